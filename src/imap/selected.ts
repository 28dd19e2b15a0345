// The selected mailbox as one session sees it (RFC 9051 §2.3.1.2, §7): its own sequence-number
// to UID map, changed only when this session tells its client. Changes made elsewhere (other
// sessions, deliveries, other programs) arrive as MailboxChange events and wait in `#pending`
// until flush() at a point where the RFC allows unsolicited responses. EXPUNGE responses are
// never sent during FETCH, STORE or SEARCH (RFC 9051 §7.5.1), so sequence numbers stay
// consistent within those commands.

import type { MailboxChange, MaildirMailbox, MessageMeta } from '../store/maildir/mailbox.ts';
import { mergeRanges, type Ranges } from './ranges.ts';
import type { SequenceSet } from './wire/command.ts';
import { flagList, seqSet as uidSet } from './wire/encode.ts';

export class SelectedView {
  readonly mailbox: MaildirMailbox;
  readonly readOnly: boolean;
  readonly uidValidity: number;
  /** seq - 1 -> UID */
  #uids: number[];
  #metas = new Map<number, MessageMeta>();
  readonly recent: Set<number>;
  #pending: MailboxChange[] = [];
  readonly #unsubscribe: () => void;
  readonly listener: (c: MailboxChange, origin: object | null) => void;
  /** Called when a change was queued (IDLE uses it to push updates at once). */
  onPending: (() => void) | null = null;
  /** RFC 7162 §3.1: with CONDSTORE on, flag updates carry MODSEQ. */
  condstore = false;
  /** RFC 7162 §3.2.10: with QRESYNC on, expunges are reported as VANISHED (UIDs). */
  qresync = false;
  /** RFC 9051: with IMAP4rev2 enabled there is no \Recent flag. */
  rev2 = false;
  /** RFC 5182: the UIDs saved by the last SEARCH RETURN (SAVE), referred to as "$". */
  saved: number[] = [];

  constructor(
    mailbox: MaildirMailbox,
    status: { uidValidity: number; messages: readonly MessageMeta[]; recent: readonly number[] },
    readOnly: boolean,
  ) {
    this.mailbox = mailbox;
    this.readOnly = readOnly;
    this.uidValidity = status.uidValidity;
    this.#uids = status.messages.map((m) => m.uid);
    for (const m of status.messages) this.#metas.set(m.uid, m);
    this.recent = new Set(status.recent);
    this.listener = (change, origin) => {
      // Our own flag changes are reported by our STORE itself.
      if (origin === this && change.kind === 'flags') {
        for (const m of change.messages) this.#metas.set(m.uid, m);
        return;
      }
      this.#pending.push(change);
      if (this.onPending) queueMicrotask(this.onPending);
    };
    this.#unsubscribe = mailbox.subscribe(this.listener);
  }

  get exists(): number {
    return this.#uids.length;
  }

  get uids(): readonly number[] {
    return this.#uids;
  }

  meta(uid: number): MessageMeta | undefined {
    return this.#metas.get(uid);
  }

  seqOf(uid: number): number {
    // Binary search: UIDs are ascending.
    let lo = 0;
    let hi = this.#uids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const u = this.#uids[mid] as number;
      if (u === uid) return mid + 1;
      if (u < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  /** Resolves a sequence set to UIDs in ascending order. With `uid`, "*" is the largest UID
   *  and absent UIDs are skipped (RFC 9051 §6.4.9); otherwise numbers above EXISTS are an error
   *  (returns null). */
  resolve(set: SequenceSet, uid: boolean): number[] | null {
    const ranges = this.uidRanges(set, uid);
    if (ranges === null) return null;
    const out: number[] = [];
    const n = this.#uids.length;
    // Walk the UIDs in each merged range (not the numbers: "1:4294967295" must be cheap, and
    // 10,000 copies of "1:*" cost what one does).
    for (const [lo, hi] of ranges) {
      for (let i = this.#lowerBound(lo); i < n && (this.#uids[i] as number) <= hi; i++)
        out.push(this.#uids[i] as number);
    }
    return out;
  }

  /** The UIDs a sequence set names, as merged UID ranges (ranges.ts): O(r log r) for r ranges
   *  whatever the client repeats, and as much memory as the command itself. null as resolve(). */
  uidRanges(set: SequenceSet, uid: boolean): Ranges | null {
    // RFC 5182 §2.1: "$" is the saved result, less what has been expunged since.
    if (set.saved) return mergeRanges(this.saved.filter((u) => this.#metas.has(u)).map((u) => [u, u] as const));
    const n = this.#uids.length;
    if (uid) {
      const max = n === 0 ? 0 : (this.#uids[n - 1] as number);
      return mergeRanges(set.ranges.map(([a, b]) => [a === '*' ? max : a, b === '*' ? max : b] as const));
    }
    const out: [number, number][] = [];
    for (const [a, b] of set.ranges) {
      let lo = a === '*' ? n : a;
      let hi = b === '*' ? n : b;
      if (lo > hi) [lo, hi] = [hi, lo];
      if (hi > n || lo < 1) return null;
      // Consecutive sequence numbers are consecutive UIDs of this view.
      out.push([this.#uids[lo - 1] as number, this.#uids[hi - 1] as number]);
    }
    return mergeRanges(out);
  }

  #lowerBound(uid: number): number {
    let lo = 0;
    let hi = this.#uids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#uids[mid] as number) < uid) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Applies waiting changes and returns the untagged responses for them. `allowExpunge` is
   *  false during FETCH, STORE and SEARCH. */
  flush(allowExpunge: boolean): string[] {
    const lines: string[] = [];
    const rest: MailboxChange[] = [];
    let existsChanged = false;
    for (const c of this.#pending) {
      if (c.kind === 'expunge') {
        if (!allowExpunge || rest.length > 0) {
          rest.push(c);
          continue;
        }
        lines.push(...this.#remove(c.uids));
      } else if (c.kind === 'exists') {
        if (rest.length > 0) {
          rest.push(c); // keep the order: these come after an expunge we cannot send yet
          continue;
        }
        for (const m of c.messages) {
          if (this.#metas.has(m.uid)) continue;
          this.#uids.push(m.uid);
          this.#metas.set(m.uid, m);
          existsChanged = true;
        }
      } else {
        for (const m of c.messages) {
          if (!this.#metas.has(m.uid)) continue;
          this.#metas.set(m.uid, m);
          lines.push(
            `* ${this.seqOf(m.uid)} FETCH (UID ${m.uid} FLAGS ${flagList(this.flagsOf(m.uid))}${this.modseqItem(m.uid)})`,
          );
        }
      }
    }
    this.#pending = rest;
    if (existsChanged) lines.push(`* ${this.#uids.length} EXISTS`);
    return lines;
  }

  get hasPending(): boolean {
    return this.#pending.length > 0;
  }

  /** Flags as this session reports them, with \Recent when it is recent here. */
  flagsOf(uid: number): string[] {
    const m = this.#metas.get(uid);
    const flags = [...(m?.flags ?? [])];
    if (this.recent.has(uid) && !this.rev2) flags.push('\\Recent');
    return flags;
  }

  /** " MODSEQ (n)" when CONDSTORE is on, else "". */
  modseqItem(uid: number): string {
    return this.condstore ? ` MODSEQ (${this.#metas.get(uid)?.modseq ?? 0})` : '';
  }

  /** The highest MODSEQ among these messages (SEARCH MODSEQ, RFC 7162 §3.1.5). */
  maxModseq(uids: readonly number[]): number {
    let max = 0;
    for (const u of uids) max = Math.max(max, this.#metas.get(u)?.modseq ?? 0);
    return max;
  }

  /** Records our own STORE results. */
  updated(metas: readonly MessageMeta[]): void {
    for (const m of metas) this.#metas.set(m.uid, m);
  }

  /** Our own EXPUNGE/MOVE: removes the messages from the view now and returns the EXPUNGE
   *  responses. The mailbox broadcast the same expunge to us too: that copy is dropped. */
  expunged(uids: readonly number[]): string[] {
    const lines = this.#remove(uids);
    this.#pending = this.#pending.filter((c) => !(c.kind === 'expunge' && c.uids.every((u) => uids.includes(u))));
    return lines;
  }

  /** Removes messages from the view, one `* n EXPUNGE` each: every n is the sequence number at
   *  the moment it is sent (RFC 9051 §7.5.1), then tells the mailbox we have announced them. */
  #remove(uids: readonly number[]): string[] {
    const lines: string[] = [];
    const gone: number[] = [];
    for (const uid of uids) {
      const seq = this.seqOf(uid);
      if (seq === 0) continue;
      this.#uids.splice(seq - 1, 1);
      this.#metas.delete(uid);
      this.recent.delete(uid);
      gone.push(uid);
      lines.push(`* ${seq} EXPUNGE`);
    }
    this.mailbox.acknowledgeExpunges(this.listener, uids);
    // RFC 7162 §3.2.10: once QRESYNC is enabled, VANISHED replaces EXPUNGE.
    if (this.qresync) return gone.length > 0 ? [`* VANISHED ${uidSet(gone)}`] : [];
    return lines;
  }

  close(): void {
    this.#unsubscribe();
  }
}
