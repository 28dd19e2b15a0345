// A message as a Maildir mailbox tracks it in memory (maildir/mailbox.ts), and its forms for
// the index (a row, a journal entry) and for protocols (MessageMeta).

import { join } from 'node:path';
import { mapSliced, TimeSlice } from '../../core/slice.ts';
import type { IndexWrite, JournalRow, MessageColumns, MessageRow } from '../index/db.ts';
import type { MessageMeta } from '../mailboxes.ts';
import { lettersToFlags } from './flags.ts';
import { type FileOnDisk, type Listing, sortByDelivery, statAll } from './scan.ts';

/** The index row (mutable in memory) plus the decoded flags. */
export type Entry = { -readonly [K in keyof MessageRow]: MessageRow[K] } & { flags: readonly string[] };

export function meta(e: Entry): MessageMeta {
  return { uid: e.uid, flags: e.flags, modseq: e.modseq, size: e.size, internalDate: new Date(e.internalDate) };
}

export function row(e: Entry): MessageRow {
  return {
    uid: e.uid,
    base: e.base,
    inNew: e.inNew,
    letters: e.letters,
    modseq: e.modseq,
    size: e.size,
    internalDate: e.internalDate,
    ...(e.thread ? { thread: e.thread } : {}),
  };
}

/** Journal entries (index/db.ts `changes`): a message added, its flags changed, expunged. */
export function appended(e: Entry): JournalRow {
  return { modseq: e.modseq, kind: 'append', uid: e.uid, base: e.base };
}

export function flagsChanged(e: Entry): JournalRow {
  return { modseq: e.modseq, kind: 'flags', uid: e.uid, base: e.base };
}

export function expungeEntries(uids: readonly number[], modseq: number): JournalRow[] {
  return uids.map((uid) => ({ modseq, kind: 'expunge', uid }));
}

/** A mailbox's entries from the index's columns (index/db.ts MessageColumns), giving way to the
 *  event loop every time slice (100,000 messages take a while). */
export async function entriesOf(c: MessageColumns, keywords: readonly string[]): Promise<Entry[]> {
  const bases = c.count > 0 ? c.bases.split('/') : [];
  const letters = c.count > 0 ? c.letters.split('/') : [];
  const entries: Entry[] = new Array(c.count);
  const slice = new TimeSlice();
  for (let i = 0; i < c.count; i++) {
    if (slice.due()) await slice.pause();
    const l = letters[i] as string;
    entries[i] = {
      uid: c.uids[i] as number,
      base: bases[i] as string,
      inNew: c.inNew[i] === 1,
      letters: l,
      flags: lettersToFlags(l, keywords),
      modseq: c.modseqs[i] as number,
      size: c.sizes[i] as number,
      internalDate: c.dates[i] as number,
    };
  }
  return entries;
}

/** Entries for files the index does not have (base -> file, from a listing of `dir`), in
 *  delivery order (names start with the delivery time), with UIDs and MODSEQs from `first` on;
 *  files gone meanwhile are left out. Size from the name's S= (else the file's), internal date
 *  from the file's mtime. */
export async function newEntries(
  dir: string,
  files: ReadonlyMap<string, FileOnDisk>,
  keywords: readonly string[],
  first: { uid: number; modseq: number },
): Promise<Entry[]> {
  const fresh = await sortByDelivery(files, ([base]) => base);
  const stats = await statAll(await mapSliced(fresh, ([, f]) => join(dir, f.inNew ? 'new' : 'cur', f.name)));
  const added: Entry[] = [];
  const slice = new TimeSlice();
  for (let i = 0; i < fresh.length; i++) {
    if (slice.due()) await slice.pause();
    const [base, f] = fresh[i] as (typeof fresh)[number];
    const st = stats[i];
    if (!st) continue; // gone meanwhile
    const sizeInName = /,S=(\d+)/.exec(base);
    added.push({
      uid: first.uid + added.length,
      base,
      inNew: f.inNew,
      letters: f.letters,
      flags: lettersToFlags(f.letters, keywords),
      modseq: first.modseq + added.length,
      size: sizeInName ? Number(sizeInName[1]) : st.size,
      internalDate: Math.floor(st.mtimeMs),
    });
  }
  return added;
}

/** The indexed entries against a listing (maildir/scan.ts): those whose file is gone (unless
 *  `buried`: expunged by us, waiting in tmp/), those whose flags changed (each with the next
 *  MODSEQ after `modseq`), those that moved between new/ and cur/ or changed (`moved`: rows to
 *  write back). Files matched are taken out of `listing.files`: what is left is new. */
export function compareWithFiles(
  entries: readonly Entry[],
  listing: Listing,
  keywords: readonly string[],
  modseq: number,
  buried: (uid: number) => boolean,
): { expunged: number[]; changed: Entry[]; moved: Entry[]; modseq: number } {
  const { skip, files } = listing;
  const expunged: number[] = [];
  const changed: Entry[] = []; // flags changed (reported to sessions)
  const moved: Entry[] = []; // any index field changed (written back)
  for (const e of entries) {
    // Its directory has not changed since a complete listing: the file is as it was.
    if (skip[e.inNew ? 'new' : 'cur']) continue;
    const f = files.get(e.base);
    if (!f) {
      if (!buried(e.uid)) expunged.push(e.uid);
      continue;
    }
    files.delete(e.base);
    if (f.letters !== e.letters || f.inNew !== e.inNew) {
      const upd: Entry = { ...e, inNew: f.inNew, letters: f.letters, flags: lettersToFlags(f.letters, keywords) };
      if (f.letters !== e.letters) {
        upd.modseq = ++modseq;
        changed.push(upd);
      }
      moved.push(upd);
    }
  }
  return { expunged, changed, moved, modseq };
}

/** Index rows written per transaction when many new files are found at once (an imported or
 *  re-indexed Maildir): each transaction is a small message to the index worker. */
const INSERT_CHUNK = 5000;

/** The index writes of a reconcile (maildir/mailbox.ts). Many new files (an imported Maildir, a
 *  lost index) go in several transactions, each a prefix of the new UIDs with the counters that
 *  go with it, so a crash between them leaves a consistent index whose remaining files the next
 *  reconcile indexes. The first also holds the flag changes and the expunge, with their journal
 *  entries; the last carries `counters`. */
export function reconcileWrites(r: {
  readonly expunged: readonly number[];
  readonly moved: readonly Entry[];
  readonly changed: readonly Entry[];
  readonly added: readonly Entry[];
  readonly expModseq: number;
  readonly counters: { readonly uidnext: number; readonly highestmodseq: number };
}): IndexWrite[] {
  const chunks: Entry[][] = [];
  for (let k = 0; k < Math.max(r.added.length, 1); k += INSERT_CHUNK) chunks.push(r.added.slice(k, k + INSERT_CHUNK));
  return chunks.map((chunk, k) => {
    const end = k < chunks.length - 1 ? (chunk.at(-1) as Entry) : null;
    return {
      ...(k === 0 ? { expunge: r.expunged, update: r.moved } : {}),
      insert: chunk.map(row),
      journal: [
        ...(k === 0 ? [...r.changed.map(flagsChanged), ...expungeEntries(r.expunged, r.expModseq)] : []),
        ...chunk.map(appended),
      ],
      counters: end ? { uidnext: end.uid + 1, highestmodseq: end.modseq } : r.counters,
    };
  });
}

/** The entries after a reconcile: `expunged` gone, `moved` replaced, `added` at the end. */
export function entriesAfter(
  entries: Entry[],
  r: { readonly expunged: readonly number[]; readonly moved: readonly Entry[]; readonly added: readonly Entry[] },
): Entry[] {
  // The common case, a delivery: nothing else changed, so append instead of copying.
  if (r.expunged.length === 0 && r.moved.length === 0) {
    for (const e of r.added) entries.push(e);
    return entries;
  }
  const gone = new Set(r.expunged);
  const updated = new Map(r.moved.map((e) => [e.uid, e]));
  return [...entries.filter((e) => !gone.has(e.uid)).map((e) => updated.get(e.uid) ?? e), ...r.added];
}
