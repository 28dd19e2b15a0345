// Which thread a new message joins (RFC 8621 §3 leaves the algorithm to the server). As Cyrus
// (conversations) and Gmail do: a message joins the thread of a message it names in
// In-Reply-To or References (or one with its own Message-ID), nearest parent first, but only
// when the base subjects (RFC 5256 §2.1) agree, so a reply reused to start a new topic, or a
// References header pasted by a mailing list, does not join unrelated messages. Otherwise it
// starts a thread whose id comes from its root Message-ID (docs/jmap-design: "T" + hash).
// Existing threads are never merged: a message's threadId never changes (RFC 8621 §3).

import { createHash } from 'node:crypto';

/** Ids of the References field looked at (the nearest ones: a long chain's end). */
const MAX_REFERENCES = 100;
const MAX_SUBJECT = 1000;

export interface ThreadInput {
  /** messageId, inReplyTo, references: the asMessageIds forms (null when absent). */
  readonly messageId: readonly string[] | null;
  readonly inReplyTo: readonly string[] | null;
  readonly references: readonly string[] | null;
  /** The decoded subject (asText), or null. */
  readonly subject: string | null;
  /** A unique value for a message without any Message-ID (its email id). */
  readonly fallbackRoot: string;
}

export interface KnownMessage {
  readonly threadId: string;
  /** The message's base subject (baseSubject of its subject). */
  readonly baseSubject: string;
}

/** Stored messages by message-id: those whose Message-ID is one of `ids` (a store may also
 *  answer for messages that reference an id, so a parent arriving after its reply finds it). */
export type ThreadLookup = (ids: readonly string[]) => Promise<ReadonlyMap<string, readonly KnownMessage[]>>;

export function threadIdOf(root: string): string {
  return `T${createHash('sha256').update(root).digest('base64url').slice(0, 24)}`;
}

export async function assignThread(
  msg: ThreadInput,
  lookup: ThreadLookup,
): Promise<{ threadId: string; baseSubject: string }> {
  const base = baseSubject(msg.subject ?? '');
  const own = msg.messageId?.[0] ?? null;
  const refs = (msg.references ?? []).slice(-MAX_REFERENCES);
  // Nearest first: In-Reply-To, then References from the last, then our own id (a duplicate).
  const candidates = [...new Set([...(msg.inReplyTo ?? []), ...[...refs].reverse(), ...(own ? [own] : [])])];
  const known = candidates.length > 0 ? await lookup(candidates) : new Map<string, readonly KnownMessage[]>();
  let mismatch = false;
  for (const id of candidates) {
    for (const k of known.get(id) ?? []) {
      if (k.baseSubject === base) return { threadId: k.threadId, baseSubject: base };
      mismatch = true;
    }
  }
  // A new thread. When a related message exists under another subject, ours is a new topic
  // rooted here; else the root is the first message of the chain (it may arrive later and
  // must land in the same thread).
  const root = mismatch ? (own ?? msg.fallbackRoot) : (refs[0] ?? msg.inReplyTo?.[0] ?? own ?? msg.fallbackRoot);
  return { threadId: threadIdOf(root), baseSubject: base };
}

/** RFC 5256 §2.1 base subject, compared case-insensitively (lower-cased here): white space
 *  collapsed, trailing "(fwd)", leading "Re:", "Fw:", "Fwd:" (with an optional [blob]) and
 *  leading "[blob]" removed, and a "[Fwd: ...]" wrapper unwrapped, repeatedly. */
export function baseSubject(subject: string): string {
  let s = subject.slice(0, MAX_SUBJECT).replace(/\s+/g, ' ').trim();
  for (let outer = 0; outer < 100; outer++) {
    // (2) trailing "(fwd)"
    for (let i = 0; i < 100 && /\(fwd\)$/i.test(s); i++) s = s.slice(0, -5).trimEnd();
    // (3)-(4) leading subj-refwd and subj-blob
    for (let i = 0; i < 100; i++) {
      const before = s;
      const m = /^(?:re|fwd?)\s*(?:\[[^[\]]*\]\s*)?:\s*/i.exec(s);
      if (m) s = s.slice(m[0].length);
      const blob = /^\[[^[\]]*\]\s*/.exec(s);
      if (blob && s.length > blob[0].length) s = s.slice(blob[0].length);
      if (s === before) break;
    }
    // (5) "[fwd:" subject "]"
    if (/^\[fwd:/i.test(s) && s.endsWith(']')) {
      s = s.slice(5, -1).trim();
      continue;
    }
    break;
  }
  return s.toLowerCase();
}
