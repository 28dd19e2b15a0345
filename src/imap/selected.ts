// The selected mailbox as one session sees it (RFC 9051 §2.3.1.2, §7): its own sequence-number
// to UID map and the flags of each message, changed only as this session tells its client.
// Changes made elsewhere (other sessions, deliveries, other programs) arrive as MailboxChange
// events, in the order they happened, and wait in `#pending` until flush() at a point where the
// RFC allows unsolicited responses. What the client is told is consistent by construction:
// - a message joins the view with `* N EXISTS` sent before any later response that could name
//   its sequence number (RFC 9051 §7.4.1), and EXPUNGE numbers are counted in the view the
//   client knows (§7.5.1); no EXPUNGE is sent during FETCH, STORE or SEARCH (§7.5.1);
// - a flag state carries its MODSEQ and replaces only an older one, so an event that was queued
//   before this session's own STORE can never undo it (RFC 7162 §3.1: a message's MODSEQ only grows);
// - a keyword is announced with `* FLAGS` and `* OK [PERMANENTFLAGS]` before any FETCH shows
//   it (RFC 9051 §7.3.5, RFC 3501 §7.2.6);
// - \Recent (RFC 3501 §2.3.2): the messages the mailbox gave to this session, with `* N RECENT`
//   after EXISTS (RFC 3501 §7.3.2; neither with IMAP4rev2).
// Views that push changes at once (IDLE sets onPending) are run together in one microtask after
// the mailbox has emitted the changes of its current step: each such session flushes once and
// writes once, however many changes the step made and however many sessions share the mailbox.

import { TimeSlice } from '../core/slice.ts';
import type { ChangeListener, Mailbox, MailboxChange, MailboxStatus, MessageMeta } from '../store/mailboxes.ts';
import { mergeRanges, type Ranges } from './ranges.ts';
import type { SequenceSet } from './wire/command.ts';
import { flagList, seqSet as uidSet } from './wire/encode.ts';

const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

export type SelectStatus = MailboxStatus & { readonly recent: readonly number[] };

export class SelectedView {
  readonly mailbox: Mailbox;
  readonly readOnly: boolean;
  #uidValidity = 0;
  /** seq - 1 -> UID */
  #uids: number[] = [];
  #metas = new Map<number, MessageMeta>();
  readonly recent = new Set<number>();
  /** Keywords this session's client has been told about in FLAGS, in that order. */
  readonly #keywords = new Set<string>();
  #pending: MailboxChange[] = [];
  readonly listener: ChangeListener;
  /** Called when a change was queued (IDLE uses it to push updates at once), from a microtask
   *  shared by every such view (see #due). Must not throw. */
  onPending: (() => void) | null = null;
  /** In #dueViews, waiting for the microtask. */
  #due = false;
  /** Views whose onPending runs in the next #runDue (one microtask for all of them). */
  static #dueViews: SelectedView[] = [];
  static readonly #runDue = (): void => {
    const views = SelectedView.#dueViews;
    SelectedView.#dueViews = [];
    let failure: { error: unknown } | null = null;
    for (const v of views) {
      v.#due = false;
      try {
        v.onPending?.();
      } catch (error) {
        failure ??= { error }; // a bug: every other view still runs, then it surfaces as before
      }
    }
    if (failure) {
      const { error } = failure;
      queueMicrotask(() => {
        throw error;
      });
    }
  };
  /** RFC 7162 §3.1: with CONDSTORE on, flag updates carry MODSEQ. */
  condstore = false;
  /** RFC 7162 §3.2.10: with QRESYNC on, expunges are reported as VANISHED (UIDs). */
  qresync = false;
  /** RFC 9051: with IMAP4rev2 enabled there is no \Recent flag. */
  rev2 = false;
  /** RFC 5182: the UIDs saved by the last SEARCH RETURN (SAVE), referred to as "$". */
  saved: number[] = [];

  private constructor(mailbox: Mailbox, readOnly: boolean) {
    this.mailbox = mailbox;
    this.readOnly = readOnly;
    this.listener = (change) => {
      this.#pending.push(change);
      if (this.onPending && !this.#due) {
        this.#due = true;
        if (SelectedView.#dueViews.push(this) === 1) queueMicrotask(SelectedView.#runDue);
      }
    };
  }

  /** SELECT/EXAMINE: the status and the subscription are taken in one step of the mailbox, so
   *  every change after the status reaches this view and none before it does twice. */
  static async open(mailbox: Mailbox, readOnly: boolean): Promise<{ view: SelectedView; status: SelectStatus }> {
    const view = new SelectedView(mailbox, readOnly);
    const status = await mailbox.sync({
      claimRecent: !readOnly,
      subscribe: { listener: view.listener, claimsRecent: !readOnly, self: view },
    });
    view.#uidValidity = status.uidValidity;
    // FLAGS at SELECT: every keyword of the mailbox (RFC 9051 §7.3.5), not only those in use,
    // so a later FLAGS never drops one a client has seen (imaptest keeps them per mailbox).
    for (const k of status.keywords) view.#keywords.add(k);
    const uids: number[] = new Array(status.messages.length);
    const slice = new TimeSlice(); // a 100,000-message SELECT gives way to other clients
    for (let i = 0; i < status.messages.length; i++) {
      const m = status.messages[i] as MessageMeta;
      uids[i] = m.uid;
      view.#metas.set(m.uid, m);
      for (const f of m.flags) if (!f.startsWith('\\')) view.#keywords.add(f);
      if (slice.due()) await slice.pause();
    }
    view.#uids = uids;
    for (const uid of status.recent) view.recent.add(uid);
    return { view, status };
  }

  get uidValidity(): number {
    return this.#uidValidity;
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

  /** `* FLAGS` and `* OK [PERMANENTFLAGS]` with every keyword announced so far (RFC 9051
   *  §7.3.5, §7.1): at SELECT, and again whenever a new keyword appears. */
  flagsLines(): string[] {
    const flags = [...SYSTEM_FLAGS, ...this.#keywords].join(' ');
    return [`* FLAGS (${flags})`, `* OK [PERMANENTFLAGS (${this.readOnly ? '' : `${flags} \\*`})] Flags permitted`];
  }

  /** The FLAGS lines to send before showing these flags, when they hold a keyword this client
   *  has not been told about (RFC 3501 §7.2.6); none otherwise. */
  #announce(flags: readonly string[]): string[] {
    let fresh = false;
    for (const f of flags) {
      if (f.startsWith('\\') || this.#keywords.has(f)) continue;
      this.#keywords.add(f);
      fresh = true;
    }
    return fresh ? this.flagsLines() : [];
  }

  /** Takes a flag state when it is newer than the one held (MODSEQ order, RFC 7162 §3.1).
   *  Returns false when it was stale or the message is not in this view. */
  #take(m: MessageMeta): boolean {
    const held = this.#metas.get(m.uid);
    if (!held || m.modseq <= held.modseq) return false;
    this.#metas.set(m.uid, m);
    return true;
  }

  /** Applies waiting changes in order and returns the untagged responses for them.
   *  `allowExpunge` is false during FETCH, STORE and SEARCH: the first expunge then waits, and
   *  every change after it too, so the order of events is kept. */
  flush(allowExpunge: boolean): string[] {
    const lines: string[] = [];
    let held = -1;
    let grown = false;
    // RFC 9051 §7.4.1: EXISTS before any response that counts the new messages.
    const announceExists = () => {
      if (!grown) return;
      grown = false;
      lines.push(`* ${this.#uids.length} EXISTS`);
      // RFC 3501 §7.3.2: RECENT whenever the number of recent messages changes.
      if (!this.rev2) lines.push(`* ${this.recent.size} RECENT`);
    };
    for (const [i, c] of this.#pending.entries()) {
      if (c.kind === 'expunge') {
        if (!allowExpunge) {
          held = i;
          break;
        }
        announceExists();
        lines.push(...this.#remove(c.uids));
      } else if (c.kind === 'exists') {
        for (const m of c.messages) {
          if (this.#metas.has(m.uid)) continue;
          lines.push(...this.#announce(m.flags));
          this.#insert(m.uid);
          this.#metas.set(m.uid, m);
          if (c.recentTo === this.listener) this.recent.add(m.uid);
          grown = true;
        }
      } else {
        for (const m of c.messages) {
          if (!this.#take(m)) continue;
          lines.push(...this.#announce(m.flags));
          announceExists();
          lines.push(
            `* ${this.seqOf(m.uid)} FETCH (UID ${m.uid} FLAGS ${flagList(this.flagsOf(m.uid))}${this.modseqItem(m.uid)})`,
          );
        }
      }
    }
    announceExists();
    this.#pending = held < 0 ? [] : this.#pending.slice(held);
    return lines;
  }

  /** Adds a UID to the sequence (UIDs arrive ascending; the sorted insert is a safeguard). */
  #insert(uid: number): void {
    const last = this.#uids.at(-1);
    if (last === undefined || uid > last) this.#uids.push(uid);
    else this.#uids.splice(this.#lowerBound(uid), 0, uid);
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

  /** Records flag states this session is about to report itself (its STORE, FETCH setting
   *  \Seen), each only over an older one. Returns the FLAGS lines to send first when they hold
   *  a keyword the client has not been told about. The same change also arrives as an event:
   *  by then it is not newer, so it is not reported twice. */
  updated(metas: readonly MessageMeta[]): string[] {
    const lines: string[] = [];
    for (const m of metas) if (this.#take(m)) lines.push(...this.#announce(m.flags));
    return lines;
  }

  /** Our own EXPUNGE/MOVE: removes the messages from the view now and returns the EXPUNGE
   *  responses. The mailbox broadcast the same expunge to us too: that copy is dropped. */
  expunged(uids: readonly number[]): string[] {
    const lines = this.#remove(uids);
    const mine = new Set(uids);
    this.#pending = this.#pending.filter((c) => !(c.kind === 'expunge' && c.uids.every((u) => mine.has(u))));
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
    this.mailbox.unsubscribe(this.listener);
  }
}
