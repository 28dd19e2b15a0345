// A mailbox's view catching up with changes other nodes committed to a shared index (issue #18,
// docs/cluster.md "Mailboxes across nodes"). Each node keeps its own view of an open mailbox
// (maildir/mailbox.ts `#entries`); the index's journal is the truth, and a view brings itself
// up to date from it (MailIndexBackend.catchUp: the rows changed and the UIDs expunged after the
// view's HIGHESTMODSEQ) when a notification says the account moved, before every write it
// makes under the mailbox's lock, and on its poll. Applying is idempotent: a row the view
// already has as it is changes nothing, so a catch-up that overlaps a full load is harmless.

import { TimeSlice } from '../../core/slice.ts';
import type { MailboxCatchUp } from '../index/backend.ts';
import { type Entry, entriesOf } from './entry.ts';
import { splitName } from './flags.ts';
import { type FileOnDisk, listMaildir } from './scan.ts';

export interface AppliedCatchUp {
  /** The view's entries now, sorted by UID. */
  readonly entries: Entry[];
  /** Messages new to the view, in UID order. */
  readonly added: Entry[];
  /** Messages whose flags (MODSEQ) changed. */
  readonly changed: Entry[];
  /** Messages expunged, as they were. */
  readonly gone: Entry[];
}

/** `entries` with `c` applied. Entries whose row changed are updated in place (sessions hold
 *  no references to them: they get MessageMeta copies). */
export async function applyCatchUp(
  entries: readonly Entry[],
  c: MailboxCatchUp,
  keywords: readonly string[],
): Promise<AppliedCatchUp> {
  const rows = await entriesOf(c.changed, keywords);
  const expunged = new Set(c.expunged);
  const byUid = new Map<number, Entry>();
  for (const r of rows) if (!expunged.has(r.uid)) byUid.set(r.uid, r);
  const changed: Entry[] = [];
  const gone: Entry[] = [];
  const kept: Entry[] = [];
  const slice = new TimeSlice();
  for (const e of entries) {
    if (slice.due()) await slice.pause();
    if (expunged.has(e.uid)) {
      gone.push(e);
      continue;
    }
    const r = byUid.get(e.uid);
    if (r) {
      byUid.delete(e.uid);
      if (r.modseq !== e.modseq || r.letters !== e.letters || r.inNew !== e.inNew) {
        const flagsMoved = r.modseq !== e.modseq || r.letters !== e.letters;
        Object.assign(e, { inNew: r.inNew, letters: r.letters, flags: r.flags, modseq: r.modseq });
        if (flagsMoved) changed.push(e);
      }
    }
    kept.push(e);
  }
  // What is left is new to this view: UIDs are given in order under the mailbox's lock, so
  // they follow the view's last one; sorted anyway, a view is never out of UID order.
  const added = [...byUid.values()].sort((a, b) => a.uid - b.uid);
  const last = kept.at(-1)?.uid ?? 0;
  const all =
    added.length > 0 && (added[0] as Entry).uid <= last
      ? [...kept, ...added].sort((a, b) => a.uid - b.uid)
      : [...kept, ...added];
  return { entries: all, added, changed, gone };
}

/** The files a delivery made (names in new/ or cur/), by base; null: every file of new/ (a
 *  delivery whose names are not known here; on a shared index indexed messages are all in cur/,
 *  so new/ holds just what is not indexed yet). */
export async function deliveredFiles(
  dir: string,
  files: readonly { sub: 'new' | 'cur'; name: string }[] | null,
): Promise<Map<string, FileOnDisk>> {
  if (!files) {
    const listing = await listMaildir(dir, { new: null, cur: null }, { new: false, cur: true });
    return listing ? new Map(listing.files) : new Map();
  }
  const found = new Map<string, FileOnDisk>();
  for (const f of files) {
    const { base, letters } = splitName(f.name);
    found.set(base, { inNew: f.sub === 'new', letters: f.sub === 'new' ? '' : letters, name: f.name });
  }
  return found;
}
