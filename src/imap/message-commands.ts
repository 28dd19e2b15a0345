// Message commands on the selected mailbox (RFC 9051 §6.4): FETCH, STORE, SEARCH, COPY, MOVE
// (RFC 6851), EXPUNGE and UID EXPUNGE (RFC 4315). Sequence numbers come from this session's view.

import { ArclineError } from '../core/errors.ts';
import { TimeSlice } from '../core/slice.ts';
import { deserializeStructure, type MimePart, parseStructure, serializeStructure } from '../mime/structure.ts';
import type { MessageBody } from '../store/mailboxes.ts';
import { canonicalSystemFlag } from '../store/names.ts';
import {
  binaryPart,
  CACHE_BATCH,
  CHEAP_ITEMS,
  CRLF,
  cheapLine,
  expandItems,
  fileLiteral,
  type Known,
  literal,
  needsStructure,
  partRange,
  sectionName,
  sectionRange,
  UnknownCte,
  Vanished,
} from './fetch-items.ts';
import { mailboxName } from './mailbox-commands.ts';
import { envelope, readHeader } from './message.ts';
import { bodyStructure } from './mime.ts';
import { OutputBatch, type Part } from './output.ts';
import { inRanges, mergeRanges } from './ranges.ts';
import { searchMessages } from './search.ts';
import type { SelectedView } from './selected.ts';
import type { Session } from './session.ts';
import type { Command, CommandOf, FetchItem, SearchKey } from './wire/command.ts';
import { flagList, imapDate, seqSet } from './wire/encode.ts';

type Cmd<N extends Command['name']> = CommandOf<N>;

export class MessageCommands {
  readonly #s: Session;

  constructor(session: Session) {
    this.#s = session;
  }

  #view(): SelectedView {
    const v = this.#s.view;
    if (!v) throw new Error('no mailbox selected');
    return v;
  }

  async run(cmd: Command): Promise<void> {
    switch (cmd.name) {
      case 'FETCH':
        return this.#fetch(cmd);
      case 'STORE':
        return this.#store(cmd);
      case 'SEARCH':
        return this.#search(cmd);
      case 'COPY':
      case 'MOVE':
        return this.#copy(cmd);
      case 'EXPUNGE':
        return this.#expunge(cmd);
      default:
        throw new Error(`not a message command: ${cmd.name}`);
    }
  }

  /** Resolves a set, answering BAD for sequence numbers beyond EXISTS. */
  async #resolve(tag: string, set: Cmd<'FETCH'>['set'], uid: boolean): Promise<number[] | null> {
    const uids = this.#view().resolve(set, uid);
    if (uids === null) await this.#s.reply(tag, 'BAD', 'Invalid message sequence number');
    return uids;
  }

  async #finish(tag: string, uidCommand: boolean, text: string): Promise<void> {
    // RFC 9051 §7.5.1: no EXPUNGE during FETCH/STORE/SEARCH; their UID forms may carry them.
    await this.#s.done(tag, text, uidCommand);
  }

  // ---- FETCH ----

  async #fetch(cmd: Cmd<'FETCH'>): Promise<void> {
    if (cmd.vanished && !this.#s.enabled.has('QRESYNC')) {
      return this.#s.reply(cmd.tag, 'BAD', 'VANISHED needs ENABLE QRESYNC (RFC 7162 §3.2.6)');
    }
    let uids = await this.#resolve(cmd.tag, cmd.set, cmd.uid);
    if (!uids) return;
    let items = expandItems(cmd.items, cmd.uid);
    const view = this.#view();
    // RFC 7162 §3.1: MODSEQ or CHANGEDSINCE in a FETCH turns CONDSTORE on.
    if (cmd.changedSince !== null || items.some((i) => i.kind === 'MODSEQ')) this.#s.enable('CONDSTORE');
    if (cmd.changedSince !== null) {
      const since = cmd.changedSince;
      if (cmd.vanished) {
        // RFC 7162 §3.2.6: the UIDs of the set expunged since then, before the FETCH responses.
        const inSet = new Set(view.resolve(cmd.set, true) ?? []);
        const max = view.uids.at(-1) ?? 0;
        // "*" is the largest UID: a range with "*" also covers every expunged UID above it.
        const star = cmd.set.ranges.some(([a, b]) => a === '*' || b === '*');
        const ranges = mergeRanges(cmd.set.ranges.map(([a, b]) => [a === '*' ? max : a, b === '*' ? max : b] as const));
        const gone = (await view.mailbox.vanishedSince(since)).filter(
          (u) => !inSet.has(u) && ((star && u >= max) || inRanges(ranges, u)),
        );
        if (gone.length > 0) await this.#s.untagged([`* VANISHED (EARLIER) ${seqSet(gone)}`]);
      }
      // §3.1.4.1: only messages changed since; MODSEQ is implied.
      uids = uids.filter((u) => (view.meta(u)?.modseq ?? 0) > since);
      if (!items.some((i) => i.kind === 'MODSEQ')) items = [...items, { kind: 'MODSEQ' }];
    }
    const setsSeen = !view.readOnly && items.some((i) => (i.kind === 'BODY[]' || i.kind === 'BINARY') && !i.peek);
    if (setsSeen) {
      const unseen = uids.filter((u) => !view.meta(u)?.flags.includes('\\Seen'));
      if (unseen.length > 0) {
        const { changed } = await view.mailbox.storeFlags(unseen, 'add', ['\\Seen'], { origin: view });
        await this.#s.untagged(view.updated(changed));
      }
    }
    const cache: [number, 'envelope' | 'structure', string][] = [];
    if (items.every((i) => CHEAP_ITEMS.has(i.kind))) {
      // Items from the index only (a client's flag resync): no file is opened, and lines are
      // sent in batches rather than one write per message.
      let batch: string[] = [];
      const slice = new TimeSlice();
      for (const uid of uids) {
        if (slice.due()) await slice.pause();
        const meta = view.meta(uid);
        if (!meta) continue;
        batch.push(cheapLine(view, uid, meta, items));
        if (batch.length >= 1000) {
          await this.#s.deps.send([batch.join('')]);
          batch = [];
        }
      }
      if (batch.length > 0) await this.#s.deps.send([batch.join('')]);
      return this.#finish(cmd.tag, cmd.uid, 'FETCH completed');
    }
    // ENVELOPE and BODYSTRUCTURE parsed earlier come from the index, asked for in batches.
    const wants = {
      envelope: items.some((i) => i.kind === 'ENVELOPE'),
      structure: items.some(needsStructure),
    };
    const known: Known = { envelope: new Map(), structure: new Map() };
    // Responses of consecutive messages go out together (one write per 64 KiB, not several per
    // message): system calls were most of a busy server's time.
    const batch = new OutputBatch((parts) => this.#s.deps.send(parts));
    for (let i = 0; i < uids.length; i++) {
      const uid = uids[i] as number;
      if (i % CACHE_BATCH === 0) {
        const next = uids.slice(i, i + CACHE_BATCH);
        const none = Promise.resolve(new Map<number, string>());
        [known.envelope, known.structure] = await Promise.all([
          wants.envelope ? view.mailbox.cached(next, 'envelope') : none,
          wants.structure ? view.mailbox.cached(next, 'structure') : none,
        ]);
      }
      const meta = view.meta(uid);
      if (!meta) continue;
      try {
        await this.#fetchOne(view, uid, meta, items, setsSeen, cache, known, batch);
      } catch (e) {
        if (!(e instanceof UnknownCte)) throw e;
        await batch.flush();
        void view.mailbox.setCached(cache).catch(() => {});
        return this.#s.reply(cmd.tag, 'NO', `[UNKNOWN-CTE] Cannot decode content-transfer-encoding ${e.message}`);
      }
    }
    await batch.flush();
    // One transaction for the whole command, not awaited: it is a cache (cached() sees it at once).
    void view.mailbox.setCached(cache).catch(() => {});
    await this.#finish(cmd.tag, cmd.uid, 'FETCH completed');
  }

  async #fetchOne(
    view: SelectedView,
    uid: number,
    meta: NonNullable<ReturnType<SelectedView['meta']>>,
    items: readonly FetchItem[],
    setsSeen: boolean,
    cache: [number, 'envelope' | 'structure', string][],
    known: Known,
    batch: OutputBatch,
  ): Promise<void> {
    const mbox = view.mailbox;
    // The file is opened only when an item needs its bytes; ENVELOPE and BODYSTRUCTURE come
    // from the index cache once they have been parsed.
    let opened: MessageBody | null | undefined;
    const file = async (): Promise<MessageBody> => {
      if (opened === undefined) opened = await mbox.openMessage(uid);
      if (!opened) throw new Vanished();
      return opened;
    };
    try {
      const out: Part[] = [`* ${view.seqOf(uid)} FETCH (`];
      // When the MIME structure is needed anyway, the message header comes from it (one read
      // of the file, or none when the structure is cached); otherwise only the header is read.
      const wantsStructure = items.some(needsStructure);
      let header: Buffer | null = null;
      const getHeader = async () => {
        if (header) return header;
        if (wantsStructure) {
          const root = await getStructure();
          // Exact only when the header ended in CRLF CRLF (always for SMTP mail; an APPEND may
          // carry bare LFs, and TEXT offsets are computed from the header length).
          if (root.bodyStart === root.header.length + 2) header = Buffer.concat([root.header, CRLF]);
        }
        header ??= await readHeader(await file(), meta.size);
        return header;
      };
      let structure: MimePart | null = null;
      const getStructure = async () => {
        if (structure) return structure;
        const cached = known.structure.get(uid);
        structure = cached ? deserializeStructure(cached) : await parseStructure(await file(), meta.size);
        if (!cached) cache.push([uid, 'structure', serializeStructure(structure)]);
        return structure;
      };
      const getEnvelope = async () => {
        const cached = known.envelope.get(uid);
        if (cached) return cached;
        const env = envelope(await getHeader());
        cache.push([uid, 'envelope', env]);
        return env;
      };
      let first = true;
      const add = (...p: Part[]) => {
        if (!first) out.push(' ');
        first = false;
        out.push(...p);
      };
      let flagsSent = false;
      for (const item of items) {
        switch (item.kind) {
          case 'UID':
            add(`UID ${uid}`);
            break;
          case 'FLAGS':
            add(`FLAGS ${flagList(view.flagsOf(uid))}`);
            flagsSent = true;
            break;
          case 'INTERNALDATE':
            add(`INTERNALDATE ${imapDate(meta.internalDate)}`);
            break;
          case 'RFC822.SIZE':
            add(`RFC822.SIZE ${meta.size}`);
            break;
          case 'MODSEQ':
            add(`MODSEQ (${view.meta(uid)?.modseq ?? meta.modseq})`);
            break;
          case 'BINARY':
          case 'BINARY.SIZE': {
            // RFC 3516: the part with its content-transfer-encoding undone.
            const decoded = await binaryPart(
              item.part,
              meta.size,
              await file(),
              item.part.length ? await getStructure() : null,
            );
            const name = `[${item.part.join('.')}]`;
            if (item.kind === 'BINARY.SIZE') {
              add(`BINARY.SIZE${name} ${decoded.length}`);
              break;
            }
            const p = item.partial;
            const bytes = p ? decoded.subarray(p.offset, p.offset + p.length) : decoded;
            // A literal8 (~{n}) when the data holds NUL, which a plain literal may not.
            const lit = bytes.includes(0) ? `~{${bytes.length}}\r\n` : `{${bytes.length}}\r\n`;
            add(`BINARY${name}${p ? `<${p.offset}>` : ''} ${lit}`, bytes);
            break;
          }
          case 'ENVELOPE':
            add(`ENVELOPE ${await getEnvelope()}`);
            break;
          case 'BODYSTRUCTURE':
          case 'BODY':
            add(`${item.kind} ${bodyStructure(await getStructure(), item.kind === 'BODYSTRUCTURE')}`);
            break;
          case 'BODY[]': {
            const name = sectionName(item);
            const whole =
              item.part.length === 0
                ? sectionRange(item, meta.size, item.text ? await getHeader() : null)
                : await partRange(item, await getStructure(), await file());
            const data: Part[] =
              whole.kind === 'bytes'
                ? literal(whole.bytes, item.partial)
                : fileLiteral(await file(), whole.start, whole.length, item.partial);
            add(`${name} `, ...data);
            break;
          }
          default:
            break;
        }
      }
      if (setsSeen && !flagsSent) add(`FLAGS ${flagList(view.flagsOf(uid))}`);
      out.push(')\r\n');
      await batch.add(out); // before the file closes: it reads small ranges now
    } catch (e) {
      if (!(e instanceof Vanished)) throw e; // expunged under us: nothing to report (RFC 2180 §4.1.2)
    } finally {
      await opened?.close();
    }
  }

  // ---- STORE ----

  async #store(cmd: Cmd<'STORE'>): Promise<void> {
    const view = this.#view();
    if (view.readOnly) return this.#s.reply(cmd.tag, 'NO', '[READ-ONLY] Mailbox is read-only');
    const uids = await this.#resolve(cmd.tag, cmd.set, cmd.uid);
    if (!uids) return;
    const flags = cmd.flags.map((f) => canonicalSystemFlag(f) ?? f).filter((f) => f !== '\\Recent');
    if (cmd.unchangedSince !== null) this.#s.enable('CONDSTORE'); // RFC 7162 §3.1
    const { changed, modifiedRefused } = await view.mailbox.storeFlags(uids, cmd.mode, flags, {
      unchangedSince: cmd.unchangedSince,
      origin: view,
    });
    const refused = new Set(modifiedRefused);
    const shown = uids.filter((u) => !refused.has(u) && view.seqOf(u) > 0);
    // The flags shown are the mailbox's now (they may hold other sessions' changes not yet
    // reported: those events are then older and not reported again); a new keyword among them
    // is announced first (RFC 3501 §7.2.6).
    const current = cmd.silent ? changed : shown.map((u) => view.mailbox.meta(u)).filter((m) => m !== null);
    await this.#s.untagged(view.updated([...changed, ...current]));
    if (!cmd.silent) {
      const lines = shown.map(
        (u) =>
          `* ${view.seqOf(u)} FETCH (${cmd.uid ? `UID ${u} ` : ''}FLAGS ${flagList(view.flagsOf(u))}${view.modseqItem(u)})`,
      );
      await this.#s.untagged(lines);
    } else if (view.condstore) {
      // RFC 7162 §3.1.3: with CONDSTORE on, a silent STORE still reports the new MODSEQ of the
      // messages it changed, so the client can keep its own HIGHESTMODSEQ right.
      const changedUids = new Set(changed.map((m) => m.uid));
      const lines = shown
        .filter((u) => changedUids.has(u))
        .map((u) => `* ${view.seqOf(u)} FETCH (${cmd.uid ? `UID ${u} ` : ''}MODSEQ (${view.meta(u)?.modseq ?? 0}))`);
      await this.#s.untagged(lines);
    }
    const code =
      modifiedRefused.length > 0
        ? `[MODIFIED ${seqSet(cmd.uid ? modifiedRefused : modifiedRefused.map((u) => view.seqOf(u)))}] `
        : '';
    await this.#finish(cmd.tag, cmd.uid, `${code}STORE completed`);
  }

  // ---- SEARCH ----

  async #search(cmd: Cmd<'SEARCH'>): Promise<void> {
    if (cmd.charset !== null && !['UTF-8', 'US-ASCII'].includes(cmd.charset)) {
      return this.#s.reply(cmd.tag, 'NO', '[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset');
    }
    // RFC 9051 §6.4.4: under IMAP4rev2 every SEARCH answers with ESEARCH (ALL by default).
    const given = cmd.return ?? (this.#s.rev2 ? [] : null);
    const ret = given === null ? null : given.length === 0 ? ['ALL'] : given.map((r) => r.toUpperCase());
    const unknown = ret?.find((r) => !['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE'].includes(r));
    if (unknown) return this.#s.reply(cmd.tag, 'BAD', `Unsupported SEARCH RETURN option ${unknown}`);
    const view = this.#view();
    const usesModseq = hasModseq(cmd.key);
    if (usesModseq) this.#s.enable('CONDSTORE'); // RFC 7162 §3.1
    const found = await searchMessages(view, cmd.key);
    if (found === null) {
      if (ret?.includes('SAVE')) view.saved = []; // RFC 5182 §2.1: a failed SAVE empties "$"
      return this.#s.reply(cmd.tag, 'BAD', 'Invalid message sequence number in search');
    }
    const nums = cmd.uid ? found : found.map((u) => view.seqOf(u));
    // RFC 5182 §2.4 and RFC 7162 §3.2.5: with MIN/MAX but neither ALL nor COUNT, only those
    // messages are saved, and the MODSEQ returned is theirs.
    const onlyMinMax =
      ret !== null && !ret.includes('ALL') && !ret.includes('COUNT') && ret.some((r) => r === 'MIN' || r === 'MAX');
    const returned = !onlyMinMax
      ? found
      : [
          ...new Set([ret.includes('MIN') ? found[0] : undefined, ret.includes('MAX') ? found.at(-1) : undefined]),
        ].filter((u): u is number => u !== undefined);
    // RFC 7162 §3.1.5: with a MODSEQ key, the highest MODSEQ of the found messages (none if empty).
    const modseq = usesModseq && returned.length > 0 ? view.maxModseq(returned) : null;
    if (ret?.includes('SAVE')) view.saved = [...returned];
    if (ret === null) {
      const tail = modseq !== null ? ` (MODSEQ ${modseq})` : '';
      await this.#s.untagged([`* SEARCH${nums.map((n) => ` ${n}`).join('')}${tail}`]);
    } else if (!(ret.length === 1 && ret[0] === 'SAVE')) {
      // RFC 4731 §3.1: one ESEARCH response with the requested results (none for SAVE alone).
      let line = `* ESEARCH (TAG ${quoted(cmd.tag)})${cmd.uid ? ' UID' : ''}`;
      if (nums.length > 0) {
        if (ret.includes('MIN')) line += ` MIN ${Math.min(...nums)}`;
        if (ret.includes('MAX')) line += ` MAX ${Math.max(...nums)}`;
        if (ret.includes('ALL')) line += ` ALL ${seqSet(nums)}`;
      }
      if (ret.includes('COUNT')) line += ` COUNT ${nums.length}`;
      if (modseq !== null) line += ` MODSEQ ${modseq}`;
      await this.#s.untagged([line]);
    }
    await this.#finish(cmd.tag, cmd.uid, 'SEARCH completed');
  }

  // ---- COPY / MOVE ----

  async #copy(cmd: Cmd<'COPY'> | Cmd<'MOVE'>): Promise<void> {
    const view = this.#view();
    if (cmd.name === 'MOVE' && view.readOnly) return this.#s.reply(cmd.tag, 'NO', '[READ-ONLY] Mailbox is read-only');
    const uids = await this.#resolve(cmd.tag, cmd.set, cmd.uid);
    if (!uids) return;
    const accounts = this.#s.deps.store.accounts;
    const destName = mailboxName(cmd.mailbox, this.#s.utf8);
    if (!(await accounts.exists(this.#s.account, destName))) {
      return this.#s.reply(cmd.tag, 'NO', '[TRYCREATE] Mailbox does not exist');
    }
    if (cmd.name === 'COPY') {
      // RFC 9208 §4.1.2: a COPY that would exceed the quota copies nothing. (MOVE frees what it uses.)
      const bytes = uids.reduce((n, u) => n + (view.meta(u)?.size ?? 0), 0);
      if (await this.#s.overQuota(bytes)) return this.#s.reply(cmd.tag, 'NO', '[OVERQUOTA] Quota exceeded');
    }
    this.#s.deps.store.quota.invalidate(this.#s.account);
    const dest = destName === view.mailbox.name ? view.mailbox : await accounts.open(this.#s.account, destName);
    let pairs: [number, number][] = [];
    let validity = 0;
    try {
      validity = (await dest.sync()).uidValidity;
      // The store copies by hard link (MOVE: rename), keeping each message's identity, and for
      // MOVE expunges the sources with this view as origin (announced below, RFC 6851 §4.3).
      pairs = await view.mailbox.copyTo(uids, dest, { move: cmd.name === 'MOVE', origin: view });
    } finally {
      if (dest !== view.mailbox) accounts.release(this.#s.account, dest);
    }
    if (uids.length > 0 && pairs.length === 0) throw new ArclineError('TEMPORARY', 'Messages vanished');
    const code =
      pairs.length > 0
        ? `[COPYUID ${validity} ${seqSet(pairs.map((p) => p[0]))} ${seqSet(pairs.map((p) => p[1]))}] `
        : '';
    if (cmd.name === 'COPY') return this.#finish(cmd.tag, cmd.uid, `${code}COPY completed`);
    // RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
    if (code) await this.#s.untagged([`* OK ${code.trim()} Moved`]);
    const moved = pairs.map((p) => p[0]);
    await this.#s.untagged(view.expunged(moved));
    await this.#finish(cmd.tag, true, 'MOVE completed');
  }

  // ---- EXPUNGE ----

  async #expunge(cmd: Cmd<'EXPUNGE'>): Promise<void> {
    const view = this.#view();
    if (view.readOnly) return this.#s.reply(cmd.tag, 'NO', '[READ-ONLY] Mailbox is read-only');
    // Bring the view up to date first, so the \Deleted flags it goes by are the current ones.
    await this.#s.flushUpdates(true);
    let candidates = view.uids;
    if (cmd.uids) candidates = view.resolve(cmd.uids, true) ?? [];
    const deleted = candidates.filter((u) => view.meta(u)?.flags.includes('\\Deleted'));
    if (deleted.length > 0) {
      this.#s.deps.store.quota.invalidate(this.#s.account);
      // Only what is \Deleted in the mailbox now goes (a session may have cleared it meanwhile).
      const gone = await view.mailbox.expunge(deleted, view, true);
      // Highest sequence number first keeps the numbers of the rest valid while announcing.
      await this.#s.untagged(view.expunged([...gone].sort((a, b) => b - a)));
    }
    await this.#finish(cmd.tag, true, 'EXPUNGE completed');
  }
}

/** Whether a SEARCH key uses MODSEQ (RFC 7162 §3.1.5: the response then carries one). */
function hasModseq(k: SearchKey): boolean {
  switch (k.kind) {
    case 'modseq':
      return true;
    case 'not':
      return hasModseq(k.key);
    case 'or':
      return hasModseq(k.a) || hasModseq(k.b);
    case 'and':
      return k.keys.some(hasModseq);
    default:
      return false;
  }
}

/** An IMAP quoted string (tags are atoms, but quoting keeps the response well-formed). */
function quoted(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}
