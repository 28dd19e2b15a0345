// Mailbox commands (RFC 9051 §6.3, RFC 3501 §6.3): SELECT, EXAMINE, CREATE, DELETE, RENAME,
// SUBSCRIBE, UNSUBSCRIBE, LIST (with SPECIAL-USE and CHILDREN attributes), LSUB, STATUS,
// APPEND (UIDPLUS APPENDUID), CLOSE and UNSELECT. Names on the wire are modified UTF-7.

import { CrlfNormalizer } from '../core/crlf.ts';
import { ArclineError } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import { decodeMutf7 } from '../core/mutf7.ts';
import { canonicalName, HIERARCHY, specialUseFor } from '../store/names.ts';
import type { SpooledMessage } from '../store/types.ts';
import { encodeBinaryParts } from './binary-append.ts';
import { encodeBinarySpool } from './binary-spool.ts';
import { compilePattern } from './list-pattern.ts';
import { selectList, selectLsub } from './list-select.ts';
import { SelectedView } from './selected.ts';
import type { Session } from './session.ts';
import type { Command, CommandOf, SequenceSet } from './wire/command.ts';
import { astr, flagList, parseImapDate, seqSet } from './wire/encode.ts';
import type { Literal } from './wire/framer.ts';

type Cmd<N extends Command['name']> = CommandOf<N>;

/** Wire name -> mailbox name: modified UTF-7 (RFC 3501 §5.1.3), or UTF-8 once the client has
 *  enabled UTF8=ACCEPT (RFC 6855 §3; normalised to NFC). Refuses what is not valid. */
export function mailboxName(wire: string, utf8 = false): string {
  // No stored name is this long: refused at once, before any decoding (RFC 5530 LIMIT).
  if (wire.length > LIMITS.mailboxes.maxWireNameLength) throw new ArclineError('LIMIT', 'Mailbox name too long');
  const name = utf8 ? wire.normalize('NFC') : decodeMutf7(wire);
  if (name === null || name === '') throw new ArclineError('INVALID', 'Invalid mailbox name');
  return canonicalName(name);
}

/** LIST/LSUB patterns, compiled (list-pattern.ts: linear time, no RegExp from client input).
 *  Reference and patterns are bounded in length and number first: NO [LIMIT] (RFC 5530). */
function compilePatterns(reference: string, patterns: readonly string[], decode: (x: string) => string) {
  const total = patterns.reduce((n, p) => n + reference.length + p.length, 0);
  if (patterns.length > LIMITS.mailboxes.maxListPatterns || total > LIMITS.mailboxes.maxPatternLength) {
    throw new ArclineError('LIMIT', 'Too many or too long mailbox patterns');
  }
  return patterns.map((p) => compilePattern(decode(reference), decode(p), HIERARCHY));
}

/** Lets other clients run between slices of a long LIST (thousands of mailboxes). */
class Slicer {
  #since = performance.now();
  #n = 0;
  async tick(): Promise<void> {
    if ((++this.#n & 63) !== 0 || performance.now() - this.#since < LIMITS.mailboxes.listSliceMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#since = performance.now();
  }
}

export class MailboxCommands {
  readonly #s: Session;

  constructor(session: Session) {
    this.#s = session;
  }

  get #accounts() {
    return this.#s.deps.store.accounts;
  }

  async run(cmd: Command): Promise<void> {
    switch (cmd.name) {
      case 'SELECT':
      case 'EXAMINE':
        return this.#select(cmd);
      case 'CREATE': {
        const name = mailboxName(cmd.mailbox, this.#s.utf8);
        if (specialUseFor(cmd.specialUse) === undefined) {
          // RFC 6154 §3: one use, of \Archive \Drafts \Junk \Sent \Trash \Important (\All and
          // \Flagged would be virtual mailboxes, which we do not have).
          return this.#s.reply(cmd.tag, 'NO', '[USEATTR] Unsupported special-use attribute');
        }
        if (name.endsWith(HIERARCHY)) {
          // RFC 9051 §6.3.4: a trailing separator only declares the intent to create children.
          return this.#ok(cmd.tag, 'CREATE completed');
        }
        await this.#accounts.create(this.#s.account, name, cmd.specialUse);
        return this.#ok(cmd.tag, 'CREATE completed');
      }
      case 'DELETE': {
        const name = mailboxName(cmd.mailbox, this.#s.utf8);
        if (!(await this.#accounts.exists(this.#s.account, name))) {
          // RFC 9051 §6.3.5: a name that exists only through its children cannot be deleted.
          const all = await this.#accounts.list(this.#s.account);
          if (all.some((m) => m.name === name && m.noselect && !m.nonexistent)) {
            return this.#s.reply(cmd.tag, 'NO', '[HASCHILDREN] Mailbox has children and holds no messages itself');
          }
        }
        if (this.#s.view?.mailbox.name === name) this.#s.leave();
        await this.#accounts.delete(this.#s.account, name);
        return this.#ok(cmd.tag, 'DELETE completed');
      }
      case 'RENAME':
        return this.#rename(cmd);
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE':
        await this.#accounts.setSubscribed(
          this.#s.account,
          mailboxName(cmd.mailbox, this.#s.utf8),
          cmd.name === 'SUBSCRIBE',
        );
        return this.#ok(cmd.tag, `${cmd.name} completed`);
      case 'LIST':
        return this.#list(cmd);
      case 'LSUB':
        return this.#lsub(cmd);
      case 'STATUS':
        return this.#status(cmd);
      case 'APPEND':
        return this.#append(cmd);
      case 'GETQUOTAROOT':
        return this.#getQuotaRoot(cmd);
      case 'GETQUOTA':
        return this.#getQuota(cmd);
      case 'CLOSE':
        return this.#close(cmd.tag, true);
      case 'UNSELECT':
        return this.#close(cmd.tag, false);
      default:
        throw new Error(`not a mailbox command: ${cmd.name}`);
    }
  }

  async #ok(tag: string, text: string): Promise<void> {
    await this.#s.done(tag, text);
  }

  async #select(cmd: Cmd<'SELECT'> | Cmd<'EXAMINE'>): Promise<void> {
    if (cmd.qresync && !this.#s.enabled.has('QRESYNC')) {
      // RFC 7162 §3.2.5: the QRESYNC parameter needs ENABLE QRESYNC first.
      return this.#s.reply(cmd.tag, 'BAD', 'QRESYNC is not enabled');
    }
    const wasSelected = this.#s.view !== null;
    this.#s.leave(); // RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected either
    // RFC 7162 §3.2.11 / RFC 9051 §7.1: the previous mailbox is closed before the new one's data.
    if (wasSelected && (this.#s.enabled.has('QRESYNC') || this.#s.rev2)) {
      await this.#s.untagged(['* OK [CLOSED] Previous mailbox closed']);
    }
    if (cmd.condstore) this.#s.enable('CONDSTORE');
    const name = mailboxName(cmd.mailbox, this.#s.utf8);
    const readOnly = cmd.name === 'EXAMINE';
    const mbox = await this.#accounts.open(this.#s.account, name);
    let opened: Awaited<ReturnType<typeof SelectedView.open>>;
    try {
      opened = await SelectedView.open(mbox, readOnly);
    } catch (e) {
      this.#accounts.release(this.#s.account, mbox);
      throw e;
    }
    const { view, status } = opened;
    // Selected from here on, so a failure below still leaves through leave() (unsubscribe, release).
    this.#s.state = { kind: 'selected', principal: this.#principal(), view };
    const firstUnseen = status.messages.findIndex((m) => !m.flags.includes('\\Seen'));
    const rev2 = this.#s.rev2;
    const lines = [
      `* ${status.messages.length} EXISTS`,
      // RFC 9051 §6.3.2: IMAP4rev2 has no RECENT and no UNSEEN code, but a LIST of the mailbox.
      ...(rev2 ? [] : [`* ${status.recent.length} RECENT`]),
      ...view.flagsLines(),
      ...(firstUnseen >= 0 && !rev2 ? [`* OK [UNSEEN ${firstUnseen + 1}] First unseen`] : []),
      ...(rev2 ? [await this.#listLine(name)] : []),
      `* OK [UIDVALIDITY ${status.uidValidity}] UIDs valid`,
      `* OK [UIDNEXT ${status.uidNext}] Predicted next UID`,
      // RFC 7162 §3.1.2.1: sent with every SELECT/EXAMINE by a server that stores mod-sequences.
      `* OK [HIGHESTMODSEQ ${status.highestModseq}] Highest`,
    ];
    view.condstore = this.#s.enabled.has('CONDSTORE');
    view.qresync = this.#s.enabled.has('QRESYNC');
    view.rev2 = rev2;
    if (cmd.qresync && cmd.qresync.uidValidity === status.uidValidity) {
      lines.push(...(await this.#resync(view, cmd.qresync, status.uidNext)));
    }
    await this.#s.untagged(lines);
    await this.#s.reply(cmd.tag, 'OK', `[${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${cmd.name} completed`);
  }

  /** RFC 7162 §3.2.5.1: what changed since the client's MODSEQ: VANISHED (EARLIER) for expunged
   *  UIDs, then FETCH (UID FLAGS MODSEQ) for changed messages. Expunged UIDs come from the index
   *  (kept for this); UIDs the client says it knows that no longer exist are added, so a client
   *  is told even about expunges older than what the index remembers. */
  async #resync(view: SelectedView, q: NonNullable<Cmd<'SELECT'>['qresync']>, uidNext: number): Promise<string[]> {
    const known = q.knownUids ? new Set(expandSet(q.knownUids, uidNext)) : null;
    const vanished = new Set((await view.mailbox.vanishedSince(q.modseq)).filter((u) => !known || known.has(u)));
    if (known) for (const u of known) if (u < uidNext && view.seqOf(u) === 0) vanished.add(u);
    const lines: string[] = [];
    if (vanished.size > 0) lines.push(`* VANISHED (EARLIER) ${seqSet([...vanished])}`);
    for (const uid of view.uids) {
      const m = view.meta(uid);
      if (!m || m.modseq <= q.modseq) continue;
      lines.push(`* ${view.seqOf(uid)} FETCH (UID ${uid} FLAGS ${flagList(view.flagsOf(uid))} MODSEQ (${m.modseq}))`);
    }
    return lines;
  }

  /** The LIST line of one mailbox (IMAP4rev2 SELECT includes it). */
  async #listLine(name: string): Promise<string> {
    const m = (await this.#accounts.list(this.#s.account)).find((e) => e.name === name);
    const attrs = m ? [m.hasChildren ? '\\HasChildren' : '\\HasNoChildren', m.specialUse].filter(Boolean) : [];
    return `* LIST (${attrs.join(' ')}) "${HIERARCHY}" ${astr(this.#s.wireName(name))}`;
  }

  #principal() {
    const st = this.#s.state;
    if (st.kind !== 'authenticated' && st.kind !== 'selected') throw new Error('not authenticated');
    return st.principal;
  }

  async #rename(cmd: Cmd<'RENAME'>): Promise<void> {
    const from = mailboxName(cmd.from, this.#s.utf8);
    const to = mailboxName(cmd.to, this.#s.utf8);
    if (from !== 'INBOX') {
      if (this.#s.view?.mailbox.name === from) this.#s.leave();
      await this.#accounts.rename(this.#s.account, from, to);
      return this.#ok(cmd.tag, 'RENAME completed');
    }
    // RFC 3501 §6.3.5: renaming INBOX moves its messages to the new mailbox, INBOX stays, empty.
    await this.#accounts.create(this.#s.account, to);
    const inbox = await this.#accounts.open(this.#s.account, 'INBOX');
    const dest = await this.#accounts.open(this.#s.account, to);
    const status = await inbox.sync();
    // A move keeps each message's identity (store: rename into the new folder).
    await inbox.copyTo(
      status.messages.map((m) => m.uid),
      dest,
      { move: true },
    );
    this.#accounts.release(this.#s.account, dest);
    return this.#ok(cmd.tag, 'RENAME completed');
  }

  async #list(cmd: Cmd<'LIST'>): Promise<void> {
    if (cmd.patterns.length === 1 && cmd.patterns[0] === '') {
      // RFC 9051 §6.3.9: an empty pattern asks for the hierarchy delimiter.
      await this.#s.untagged([`* LIST (\\Noselect) "${HIERARCHY}" ""`]);
      return this.#ok(cmd.tag, 'LIST completed');
    }
    const compiled = compilePatterns(cmd.reference, cmd.patterns, (x) => (this.#s.utf8 ? x : (decodeMutf7(x) ?? x)));
    const lines: string[] = [];
    const slicer = new Slicer();
    const entries = await this.#accounts.list(this.#s.account);
    for (const { entry: m, attributes, childInfo } of selectList(entries, compiled, cmd, HIERARCHY)) {
      await slicer.tick();
      const info = childInfo ? ' ("CHILDINFO" ("SUBSCRIBED"))' : '';
      lines.push(`* LIST (${attributes.join(' ')}) "${HIERARCHY}" ${astr(this.#s.wireName(m.name))}${info}`);
      // RFC 5819 §2: LIST ... RETURN (STATUS (items)): a STATUS after each selectable mailbox.
      if (cmd.statusItems.length > 0 && !m.noselect) {
        const status = await this.#statusLine(m.name, cmd.statusItems);
        if (typeof status !== 'string') return this.#s.reply(cmd.tag, 'BAD', `Unknown STATUS item ${status.unknown}`);
        lines.push(status);
      }
    }
    await this.#s.untagged(lines);
    return this.#ok(cmd.tag, 'LIST completed');
  }

  async #lsub(cmd: Cmd<'LSUB'>): Promise<void> {
    const [pattern] = compilePatterns(cmd.reference, [cmd.pattern], (x) => (this.#s.utf8 ? x : (decodeMutf7(x) ?? x)));
    const lines: string[] = [];
    const slicer = new Slicer();
    const entries = pattern ? await this.#accounts.list(this.#s.account) : [];
    for (const m of pattern ? selectLsub(entries, pattern, HIERARCHY) : []) {
      await slicer.tick();
      lines.push(`* LSUB (${m.noselect ? '\\Noselect' : ''}) "${HIERARCHY}" ${astr(this.#s.wireName(m.name))}`);
    }
    await this.#s.untagged(lines);
    return this.#ok(cmd.tag, 'LSUB completed');
  }

  async #status(cmd: Cmd<'STATUS'>): Promise<void> {
    const name = mailboxName(cmd.mailbox, this.#s.utf8);
    const line = await this.#statusLine(name, cmd.items);
    if (typeof line !== 'string') return this.#s.reply(cmd.tag, 'BAD', `Unknown STATUS item ${line.unknown}`);
    await this.#s.untagged([line]);
    return this.#ok(cmd.tag, 'STATUS completed');
  }

  /** "* STATUS name (items)" (RFC 9051 §6.3.11, RFC 7162 §3.1.8 HIGHESTMODSEQ, RFC 8438 SIZE). */
  async #statusLine(name: string, wanted: readonly string[]): Promise<string | { unknown: string }> {
    const mbox = await this.#accounts.open(this.#s.account, name);
    try {
      const st = await mbox.sync();
      const items: string[] = [];
      for (const item of wanted.map((w) => w.toUpperCase())) {
        switch (item) {
          case 'MESSAGES':
            items.push(`MESSAGES ${st.messages.length}`);
            break;
          case 'RECENT':
            if (this.#s.rev2) return { unknown: item }; // not a STATUS item of IMAP4rev2
            items.push(`RECENT ${mbox.unclaimed}`);
            break;
          case 'UIDNEXT':
            items.push(`UIDNEXT ${st.uidNext}`);
            break;
          case 'UIDVALIDITY':
            items.push(`UIDVALIDITY ${st.uidValidity}`);
            break;
          case 'UNSEEN':
            items.push(`UNSEEN ${st.messages.filter((m) => !m.flags.includes('\\Seen')).length}`);
            break;
          case 'DELETED':
            // RFC 9051 §6.3.11
            items.push(`DELETED ${st.messages.filter((m) => m.flags.includes('\\Deleted')).length}`);
            break;
          case 'SIZE':
            // RFC 8438: the mailbox size in octets
            items.push(`SIZE ${st.messages.reduce((n, m) => n + m.size, 0)}`);
            break;
          case 'HIGHESTMODSEQ':
            // RFC 7162 §3.1.8; asking for it turns CONDSTORE on (§3.1).
            this.#s.enable('CONDSTORE');
            items.push(`HIGHESTMODSEQ ${st.highestModseq}`);
            break;
          default:
            return { unknown: item };
        }
      }
      return `* STATUS ${astr(this.#s.wireName(name))} (${items.join(' ')})`;
    } finally {
      this.#accounts.release(this.#s.account, mbox);
    }
  }

  // ---- QUOTA (RFC 9208): one quota root "" per user, resource STORAGE in units of 1024 octets ----

  async #quotaLine(): Promise<string | null> {
    const limit = await this.#s.deps.directory.quota(this.#s.account);
    if (limit === null) return null;
    const used = await this.#s.deps.store.usage(this.#s.account);
    return `* QUOTA "" (STORAGE ${Math.ceil(used / 1024)} ${Math.floor(limit / 1024)})`;
  }

  async #getQuotaRoot(cmd: Cmd<'GETQUOTAROOT'>): Promise<void> {
    const name = mailboxName(cmd.mailbox, this.#s.utf8);
    if (!(await this.#accounts.exists(this.#s.account, name))) {
      return this.#s.reply(cmd.tag, 'NO', '[NONEXISTENT] Mailbox does not exist');
    }
    const quota = await this.#quotaLine();
    // RFC 9208 §4.3: a mailbox without a quota root has none listed.
    const lines = [`* QUOTAROOT ${astr(cmd.mailbox)}${quota ? ' ""' : ''}`, ...(quota ? [quota] : [])];
    await this.#s.untagged(lines);
    return this.#ok(cmd.tag, 'GETQUOTAROOT completed');
  }

  async #getQuota(cmd: Cmd<'GETQUOTA'>): Promise<void> {
    const quota = cmd.root === '' ? await this.#quotaLine() : null;
    if (!quota) return this.#s.reply(cmd.tag, 'NO', '[NONEXISTENT] No such quota root');
    await this.#s.untagged([quota]);
    return this.#ok(cmd.tag, 'GETQUOTA completed');
  }

  async #append(cmd: Cmd<'APPEND'>): Promise<void> {
    const name = mailboxName(cmd.mailbox, this.#s.utf8);
    if (!(await this.#accounts.exists(this.#s.account, name))) {
      return this.#s.reply(cmd.tag, 'NO', '[TRYCREATE] Mailbox does not exist');
    }
    const mbox = await this.#accounts.open(this.#s.account, name);
    const uids: number[] = [];
    let validity = 0;
    try {
      validity = (await mbox.sync()).uidValidity;
      for (const [i, m] of cmd.messages.entries()) {
        const date = m.date === null ? null : parseImapDate(m.date);
        if (m.date !== null && date === null) return this.#s.reply(cmd.tag, 'BAD', 'Invalid date-time');
        if (m.utf8 && !this.#s.utf8) return this.#s.reply(cmd.tag, 'BAD', 'APPEND UTF8 needs ENABLE UTF8=ACCEPT');
        const msg = await this.#spooled(m.data, i);
        if (await this.#s.overQuota(msg.size)) {
          await msg.dispose();
          // RFC 9208 §4.1.2: NO [OVERQUOTA]; nothing of this APPEND is kept beyond what was stored.
          return this.#s.reply(cmd.tag, 'NO', '[OVERQUOTA] Quota exceeded');
        }
        try {
          uids.push(
            await mbox.append(
              msg,
              m.flags.filter((f) => f !== '\\Recent'),
              date,
              this.#s.view,
            ),
          );
        } finally {
          await msg.dispose();
        }
      }
    } finally {
      this.#accounts.release(this.#s.account, mbox);
      this.#s.deps.store.quota.invalidate(this.#s.account);
    }
    return this.#ok(cmd.tag, `[APPENDUID ${validity} ${uids.join(',')}] APPEND completed`);
  }

  async #spooled(data: Literal, index: number): Promise<SpooledMessage> {
    if (!Buffer.isBuffer(data)) {
      const spooled = await this.#s.deps.streamedLiteral(data.index ?? index);
      if (!data.binary) return spooled; // CRLF line endings already
      // RFC 3516 §4.4: a literal8 was spooled as sent; converted as below, chunk by chunk. The raw
      // spool is freed now (the connection disposes it again at the end of the command).
      const converted = await encodeBinarySpool(spooled, this.#s.deps.store.createSpool());
      await spooled.dispose();
      return converted;
    }
    const w = this.#s.deps.store.createSpool();
    const crlf = new CrlfNormalizer(); // stored with CRLF line endings, like SMTP mail
    // RFC 3516 §4.4: binary parts become base64 first, so normalising line endings keeps them exact.
    await w.write(crlf.push(encodeBinaryParts(data)));
    await w.write(crlf.end());
    return w.finish();
  }

  async #close(tag: string, expunge: boolean): Promise<void> {
    const view = this.#s.view;
    if (view && expunge && !view.readOnly) {
      // RFC 9051 §6.4.1: CLOSE expunges \Deleted messages without untagged EXPUNGE responses.
      const deleted = view.uids.filter((u) => view.meta(u)?.flags.includes('\\Deleted'));
      if (deleted.length > 0) await view.mailbox.expunge(deleted, view, true);
    }
    this.#s.leave();
    await this.#s.reply(tag, 'OK', `${expunge ? 'CLOSE' : 'UNSELECT'} completed`);
  }
}

/** The numbers of a UID set (QRESYNC known-uids), "*" meaning the last UID; bounded by uidNext. */
function expandSet(set: SequenceSet, uidNext: number): number[] {
  const out: number[] = [];
  for (const [a, b] of set.ranges) {
    let lo = a === '*' ? uidNext - 1 : a;
    let hi = b === '*' ? uidNext - 1 : b;
    if (lo > hi) [lo, hi] = [hi, lo];
    for (let u = Math.max(1, lo); u <= Math.min(hi, uidNext - 1) && out.length < 1_000_000; u++) out.push(u);
  }
  return out;
}
