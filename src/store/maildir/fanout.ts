// The sessions of one mailbox (maildir/mailbox.ts): who is subscribed to its changes, which new
// messages are \Recent and for whom, and the files of expunged messages kept until every
// subscriber has told its client about the expunge.
//
// - Changes reach every subscriber in the order they were committed (MODSEQ order).
// - \Recent (RFC 3501 §2.3.2): a new message is recent for exactly one session: the one whose
//   command added it (its origin), else the first read-write subscriber; with none, it waits in
//   `recent` for the next SELECT.
// - An expunged message's file (moved to tmp/) is unlinked only once every subscriber at the
//   time of the expunge has acknowledged it (or left), so a session can still FETCH a message
//   it has not yet been told is gone.

import { unlink } from 'node:fs/promises';
import type { ChangeListener, MailboxChange, MessageMeta, SubscribeOptions } from '../mailboxes.ts';
import type { Entry } from './entry.ts';

export class Fanout {
  readonly #listeners = new Map<ChangeListener, SubscribeOptions>();
  /** UIDs that are \Recent and not yet taken by a session. */
  readonly recent = new Set<number>();
  /** Expunged files waiting for acknowledgements: uid -> tmp path and who has not acked. */
  readonly #graveyard = new Map<number, { path: string; keep: boolean; entry: Entry; waiting: Set<ChangeListener> }>();

  get size(): number {
    return this.#listeners.size;
  }

  add(listener: ChangeListener, opts: SubscribeOptions): void {
    this.#listeners.set(listener, opts);
  }

  /** Leaving counts as acknowledging every pending expunge. False when it was not subscribed. */
  remove(listener: ChangeListener): boolean {
    if (!this.#listeners.delete(listener)) return false;
    this.acknowledge(listener, [...this.#graveyard.keys()]);
    return true;
  }

  emit(change: MailboxChange, origin: object | null): void {
    for (const l of this.#listeners.keys()) l(change, origin);
  }

  /** New messages, \Recent for one read-write subscriber if there is one (the origin first).
   *  True when a subscriber took them (maildir/mailbox.ts then moves them out of new/). */
  emitExists(metas: readonly MessageMeta[], origin: object | null): boolean {
    let owner: ChangeListener | null = null;
    for (const [l, o] of this.#listeners) {
      if (!o.claimsRecent) continue;
      if (origin !== null && (l === origin || o.self === origin)) {
        owner = l;
        break;
      }
      owner ??= l;
    }
    if (!owner) for (const m of metas) this.recent.add(m.uid);
    this.emit({ kind: 'exists', messages: metas, recentTo: owner }, origin);
    return owner !== null;
  }

  /** The expunged message `uid` now lives at `path` until every current subscriber acked it.
   *  With `keep` (a MOVE renamed the file into another mailbox) the file is not removed then. */
  bury(entry: Entry, path: string, keep = false): void {
    const uid = entry.uid;
    this.#graveyard.set(uid, { path, keep, entry, waiting: new Set(this.#listeners.keys()) });
    this.recent.delete(uid);
  }

  /** An expunged, not yet acknowledged message (a COPY from a session that still shows it). */
  buried(uid: number): { entry: Entry; path: string; keep: boolean } | undefined {
    return this.#graveyard.get(uid);
  }

  /** Where an expunged, not yet acknowledged message is, or undefined. */
  grave(uid: number): string | undefined {
    return this.#graveyard.get(uid)?.path;
  }

  acknowledge(listener: ChangeListener, uids: readonly number[]): void {
    for (const uid of uids) {
      const g = this.#graveyard.get(uid);
      if (!g) continue;
      g.waiting.delete(listener);
      void this.unlinkIfDone(uid);
    }
  }

  async unlinkIfDone(uid: number): Promise<void> {
    const g = this.#graveyard.get(uid);
    if (!g || g.waiting.size > 0) return;
    this.#graveyard.delete(uid);
    if (!g.keep) await unlink(g.path).catch(() => {});
  }
}
