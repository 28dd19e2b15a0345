// IMAP command parser: Frame -> Command | error. Pure; never throws. Grammar: RFC 9051 §9 and
// RFC 3501 §9, with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154),
// CONDSTORE (RFC 7162), ESEARCH (RFC 4731), SASL-IR (RFC 4959), ID (RFC 2971), MOVE (RFC 6851),
// UIDPLUS (RFC 4315), ENABLE (RFC 5161), UNSELECT (RFC 3691) and IDLE (RFC 2177).

import type {
  AppendMessage,
  BodySection,
  Command,
  FetchItem,
  QresyncParams,
  SectionText,
  SequenceSet,
} from './command.ts';
import type { Frame } from './framer.ts';
import { parseSearch } from './parse-search.ts';
import { ParseError, Reader } from './reader.ts';
import { flag, sequenceSet, spaceSeparated } from './terms.ts';

export type ParseResult =
  | { readonly ok: true; readonly command: Command }
  | { readonly ok: false; readonly tag: string | null; readonly text: string };

export function parseCommand(frame: Frame): ParseResult {
  const r = new Reader(frame);
  let tag: string | null = null;
  try {
    tag = r.atom(']');
    if (tag.includes('+')) throw new ParseError('Invalid tag');
    r.sp();
    const command = parseBody(r, tag);
    r.end();
    return { ok: true, command };
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, tag, text: e.message };
    throw e;
  }
}

function parseBody(r: Reader, tag: string): Command {
  const name = r.atom().toUpperCase();
  switch (name) {
    case 'CAPABILITY':
    case 'NOOP':
    case 'LOGOUT':
    case 'STARTTLS':
    case 'CHECK':
    case 'CLOSE':
    case 'UNSELECT':
    case 'IDLE':
    case 'NAMESPACE':
      return { tag, name };
    case 'LOGIN': {
      r.sp();
      const user = r.astring();
      r.sp();
      return { tag, name, user, password: r.astring() };
    }
    case 'AUTHENTICATE': {
      r.sp();
      const mechanism = r.atom().toUpperCase();
      let initial: string | null = null;
      if (r.eat(0x20)) initial = r.atom('=');
      return { tag, name, mechanism, initial };
    }
    case 'SELECT':
    case 'EXAMINE': {
      r.sp();
      const mailbox = r.astring();
      let condstore = false;
      let qresync: QresyncParams | null = null;
      if (r.eat(0x20)) {
        r.list(() => {
          const p = r.atom().toUpperCase();
          if (p === 'CONDSTORE') condstore = true;
          else if (p === 'QRESYNC') {
            r.sp();
            qresync = qresyncParams(r);
          } else throw new ParseError(`Unsupported ${name} parameter ${p}`);
          return null;
        });
      }
      return { tag, name, mailbox, condstore, qresync };
    }
    case 'CREATE': {
      r.sp();
      const mailbox = r.astring();
      let specialUse: string[] = [];
      if (r.eat(0x20)) {
        // RFC 6154 §3: CREATE mailbox (USE (\Archive ...))
        r.list(() => {
          if (!r.keyword('USE')) throw new ParseError('Unsupported CREATE parameter');
          r.sp();
          specialUse = r.list(() => flag(r));
          return null;
        });
      }
      return { tag, name, mailbox, specialUse };
    }
    case 'DELETE':
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE':
      r.sp();
      return { tag, name, mailbox: r.astring() };
    case 'RENAME': {
      r.sp();
      const from = r.astring();
      r.sp();
      return { tag, name, from, to: r.astring() };
    }
    case 'LIST':
      return parseList(r, tag);
    case 'LSUB': {
      r.sp();
      const reference = r.astring();
      r.sp();
      return { tag, name, reference, pattern: r.listMailbox() };
    }
    case 'COMPRESS': {
      // RFC 4978 §3: COMPRESS mechanism
      r.sp();
      return { tag, name: 'COMPRESS', mechanism: r.atom().toUpperCase() };
    }
    case 'GETQUOTAROOT': {
      // RFC 9208 §4.3
      r.sp();
      return { tag, name: 'GETQUOTAROOT', mailbox: r.astring() };
    }
    case 'GETQUOTA': {
      // RFC 9208 §4.2
      r.sp();
      return { tag, name: 'GETQUOTA', root: r.astring() };
    }
    case 'STATUS': {
      r.sp();
      const mailbox = r.astring();
      r.sp();
      return { tag, name, mailbox, items: r.list(() => r.atom().toUpperCase()) };
    }
    case 'APPEND':
      return parseAppend(r, tag);
    case 'EXPUNGE':
      return { tag, name, uids: null };
    case 'SEARCH':
      return parseSearch(r, tag, false);
    case 'FETCH':
      return parseFetch(r, tag, false);
    case 'STORE':
      return parseStore(r, tag, false);
    case 'COPY':
    case 'MOVE': {
      r.sp();
      const set = sequenceSet(r);
      r.sp();
      return { tag, name, uid: false, set, mailbox: r.astring() };
    }
    case 'UID':
      return parseUid(r, tag);
    case 'ENABLE': {
      const capabilities: string[] = [];
      while (r.eat(0x20)) capabilities.push(r.atom().toUpperCase());
      if (capabilities.length === 0) throw new ParseError('ENABLE needs a capability');
      return { tag, name, capabilities };
    }
    case 'ID': {
      r.sp();
      if (r.keyword('NIL')) return { tag, name, params: null };
      // RFC 2971: "(" string SP nstring *(SP string SP nstring) ")"; at most 30 pairs.
      const items = r.list(() => r.nstring(), true);
      if (items.length % 2 !== 0 || items.length > 60) throw new ParseError('Bad ID parameter list');
      const params: Record<string, string | null> = {};
      for (let i = 0; i < items.length; i += 2) {
        const field = items[i];
        if (field === null || field === undefined) throw new ParseError('ID field may not be NIL');
        params[field] = items[i + 1] ?? null;
      }
      return { tag, name, params };
    }
    default:
      throw new ParseError(`Unknown command ${name.slice(0, 32)}`);
  }
}

function parseUid(r: Reader, tag: string): Command {
  r.sp();
  const sub = r.atom().toUpperCase();
  switch (sub) {
    case 'FETCH':
      return parseFetch(r, tag, true);
    case 'STORE':
      return parseStore(r, tag, true);
    case 'SEARCH':
      return parseSearch(r, tag, true);
    case 'COPY':
    case 'MOVE': {
      r.sp();
      const set = sequenceSet(r);
      r.sp();
      return { tag, name: sub, uid: true, set, mailbox: r.astring() };
    }
    case 'EXPUNGE':
      r.sp();
      return { tag, name: 'EXPUNGE', uids: sequenceSet(r) };
    default:
      throw new ParseError(`Unknown UID command ${sub.slice(0, 32)}`);
  }
}

/** sequence-set (RFC 9051 §9): comma-separated numbers and ranges, "*" for the largest. */
/** seq-match-data = "(" known-sequence-set SP known-uid-set ")" (RFC 7162 §3.2.5). */
function seqMatchData(r: Reader): { seqs: SequenceSet; uids: SequenceSet } {
  r.expect(0x28, '"("');
  const seqs = sequenceSet(r);
  r.sp();
  const uids = sequenceSet(r);
  r.expect(0x29, '")"');
  return { seqs, uids };
}

/** RFC 7162 §3.2.5: QRESYNC (uidvalidity mod-sequence-value [known-uids [seq-match-data]]). */
function qresyncParams(r: Reader): QresyncParams {
  r.expect(0x28, '"("');
  const uidValidity = r.number();
  r.sp();
  const modseq = r.number();
  let knownUids: SequenceSet | null = null;
  let seqMatch: { seqs: SequenceSet; uids: SequenceSet } | null = null;
  if (r.eat(0x20)) {
    if (r.peek() !== 0x28) {
      knownUids = sequenceSet(r);
      if (r.eat(0x20)) seqMatch = seqMatchData(r);
    } else {
      seqMatch = seqMatchData(r);
    }
  }
  r.expect(0x29, '")"');
  if (uidValidity === 0) throw new ParseError('QRESYNC: uidvalidity must be a non-zero number');
  return { uidValidity, modseq, knownUids, seqMatch };
}

function flagList(r: Reader): string[] {
  return r.list(() => flag(r), true);
}

const DATE_TIME = /^(?:[ \d]\d)-[A-Za-z]{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}$/;

function parseAppend(r: Reader, tag: string): Command {
  r.sp();
  const mailbox = r.astring();
  const messages: AppendMessage[] = [];
  // RFC 3502 MULTIAPPEND grammar: one or more messages, each [flags] [date] literal.
  while (r.eat(0x20)) {
    let flags: string[] = [];
    let date: string | null = null;
    if (r.peek() === 0x28) {
      flags = flagList(r);
      r.sp();
    }
    if (r.peek() === 0x22) {
      date = r.quoted();
      if (!DATE_TIME.test(date)) throw new ParseError('Invalid date-time');
      r.sp();
    }
    // RFC 6855 §4: "UTF8" SP "(" literal8 ")" carries a message with UTF-8 headers.
    if (r.keyword('UTF8')) {
      r.sp();
      r.expect(0x28, '"("');
      const data = r.literal();
      r.expect(0x29, '")"');
      messages.push({ flags, date, data, utf8: true });
      continue;
    }
    messages.push({ flags, date, data: r.literal(), utf8: false });
  }
  if (messages.length === 0) throw new ParseError('APPEND needs a message');
  return { tag, name: 'APPEND', mailbox, messages };
}

function parseStore(r: Reader, tag: string, uid: boolean): Command {
  r.sp();
  const set = sequenceSet(r);
  r.sp();
  let unchangedSince: number | null = null;
  if (r.peek() === 0x28) {
    // RFC 7162 §3.1.3: STORE set (UNCHANGEDSINCE n) ...
    r.list(() => {
      if (!r.keyword('UNCHANGEDSINCE')) throw new ParseError('Unsupported STORE modifier');
      r.sp();
      unchangedSince = r.number();
      return null;
    });
    r.sp();
  }
  const item = r.atom().toUpperCase();
  const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(item);
  if (!m) throw new ParseError(`Invalid STORE item ${item.slice(0, 32)}`);
  r.sp();
  const flags = r.peek() === 0x28 ? flagList(r) : spaceSeparated(r, () => flag(r));
  const mode = m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set';
  return { tag, name: 'STORE', uid, set, mode, silent: m[2] !== undefined, flags, unchangedSince };
}

function parseList(r: Reader, tag: string): Command {
  r.sp();
  let select: string[] = [];
  if (r.peek() === 0x28) {
    select = r.list(() => r.atom().toUpperCase(), true);
    r.sp();
  }
  const reference = r.astring();
  r.sp();
  const patterns = r.peek() === 0x28 ? r.list(() => r.listMailbox()) : [r.listMailbox()];
  let ret: string[] = [];
  let statusItems: string[] = [];
  if (r.eat(0x20)) {
    if (!r.keyword('RETURN')) throw new ParseError('Expected RETURN');
    r.sp();
    ret = r.list(() => {
      const opt = r.atom().toUpperCase();
      if (opt === 'STATUS') {
        r.sp();
        statusItems = r.list(() => r.atom().toUpperCase());
      }
      return opt;
    }, true);
  }
  checkListOptions(select, ret);
  return { tag, name: 'LIST', reference, patterns, select, return: ret, statusItems };
}

/** RFC 5258 §3, §6 (and RFC 6154 §5.3 SPECIAL-USE, RFC 5819 STATUS): the selection and return
 *  options this server knows; anything else is BAD. RECURSIVEMATCH only refines another
 *  selection option than REMOTE, so alone (or with REMOTE alone) it is BAD too. */
const LIST_SELECT = new Set(['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE']);
const LIST_RETURN = new Set(['SUBSCRIBED', 'CHILDREN', 'STATUS', 'SPECIAL-USE']);

function checkListOptions(select: readonly string[], ret: readonly string[]): void {
  for (const o of select)
    if (!LIST_SELECT.has(o)) throw new ParseError(`Unknown LIST selection option ${o.slice(0, 32)}`);
  for (const o of ret) if (!LIST_RETURN.has(o)) throw new ParseError(`Unknown LIST return option ${o.slice(0, 32)}`);
  if (select.includes('RECURSIVEMATCH') && !select.some((o) => o !== 'RECURSIVEMATCH' && o !== 'REMOTE')) {
    throw new ParseError('RECURSIVEMATCH needs another selection option');
  }
}

// ---- FETCH ----

function parseFetch(r: Reader, tag: string, uid: boolean): Command {
  r.sp();
  const set = sequenceSet(r);
  r.sp();
  let items: FetchItem[];
  if (r.keyword('ALL'))
    items = [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }, { kind: 'ENVELOPE' }];
  else if (r.keyword('FAST')) items = [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }];
  else if (r.keyword('FULL')) {
    items = [
      { kind: 'FLAGS' },
      { kind: 'INTERNALDATE' },
      { kind: 'RFC822.SIZE' },
      { kind: 'ENVELOPE' },
      { kind: 'BODY' },
    ];
  } else if (r.peek() === 0x28) items = r.list(() => fetchItem(r));
  else items = [fetchItem(r)];
  let changedSince: number | null = null;
  let vanished = false;
  if (r.eat(0x20)) {
    // RFC 7162 §3.1.4.1: FETCH set items (CHANGEDSINCE n); §3.2.6: UID FETCH ... (... VANISHED)
    r.list(() => {
      if (r.keyword('VANISHED')) {
        vanished = true;
        return null;
      }
      if (!r.keyword('CHANGEDSINCE')) throw new ParseError('Unsupported FETCH modifier');
      r.sp();
      changedSince = r.number();
      return null;
    });
    if (vanished && (!uid || changedSince === null)) {
      throw new ParseError('VANISHED needs UID FETCH with CHANGEDSINCE (RFC 7162 §3.2.6)');
    }
  }
  return { tag, name: 'FETCH', uid, set, items, changedSince, vanished };
}

const SIMPLE_FETCH = [
  'FLAGS',
  'INTERNALDATE',
  'RFC822.SIZE',
  'RFC822.HEADER',
  'RFC822.TEXT',
  'RFC822',
  'UID',
  'ENVELOPE',
  'BODYSTRUCTURE',
  'MODSEQ',
] as const;

function fetchItem(r: Reader): FetchItem {
  // RFC 3516 §4.2: BINARY[part]<partial>, BINARY.PEEK[...], BINARY.SIZE[part].
  if (r.keyword('BINARY.SIZE')) return { kind: 'BINARY.SIZE', part: binarySection(r).part };
  const binaryPeek = r.keyword('BINARY.PEEK');
  if (binaryPeek || r.keyword('BINARY')) return { kind: 'BINARY', ...binarySection(r), peek: binaryPeek };
  for (const k of SIMPLE_FETCH) if (r.keyword(k)) return { kind: k };
  const peek = r.keyword('BODY.PEEK');
  if (!peek && !r.keyword('BODY')) throw new ParseError('Invalid FETCH item');
  if (r.peek() !== 0x5b) {
    if (peek) throw new ParseError('BODY.PEEK needs a section');
    return { kind: 'BODY' };
  }
  return { kind: 'BODY[]', ...section(r, peek) };
}

/** "[" section-binary "]" ["<" offset "." length ">"]: part numbers only (RFC 3516 §4.2). */
function binarySection(r: Reader): { part: number[]; partial: { offset: number; length: number } | null } {
  const s = section(r, false);
  if (s.text !== null) throw new ParseError('BINARY takes part numbers only');
  return { part: [...s.part], partial: s.partial };
}

/** "[" section-spec "]" ["<" offset "." length ">"] (RFC 9051 §6.4.5). */
function section(r: Reader, peek: boolean): BodySection {
  r.expect(0x5b, '"["');
  const part: number[] = [];
  let text: SectionText | null = null;
  while (r.peek() >= 0x30 && r.peek() <= 0x39) {
    const n = digits(r);
    if (n === 0) throw new ParseError('Section part numbers start at 1');
    part.push(n);
    if (part.length > 32) throw new ParseError('Section nested too deeply');
    if (!r.eat(0x2e)) break;
  }
  if (r.peek() !== 0x5d) text = sectionText(r, part.length > 0);
  r.expect(0x5d, '"]"');
  let partial: { offset: number; length: number } | null = null;
  if (r.eat(0x3c)) {
    const offset = digits(r);
    r.expect(0x2e, '"."');
    const length = digits(r);
    r.expect(0x3e, '">"');
    if (length === 0) throw new ParseError('Partial length must be positive');
    partial = { offset, length };
  }
  return { part, text, partial, peek };
}

function sectionText(r: Reader, afterPart: boolean): SectionText {
  const word = r.atom().toUpperCase();
  switch (word) {
    case 'HEADER':
      return { kind: 'HEADER' };
    case 'TEXT':
      return { kind: 'TEXT' };
    case 'MIME':
      if (!afterPart) throw new ParseError('MIME needs a part number');
      return { kind: 'MIME' };
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT': {
      r.sp();
      const fields = r.list(() => r.astring());
      return { kind: 'HEADER.FIELDS', fields, not: word === 'HEADER.FIELDS.NOT' };
    }
    default:
      throw new ParseError(`Invalid section ${word.slice(0, 32)}`);
  }
}

function digits(r: Reader): number {
  let n = 0;
  let count = 0;
  while (r.peek() >= 0x30 && r.peek() <= 0x39) {
    n = n * 10 + (r.peek() - 0x30);
    r.eat(r.peek());
    if (++count > 10) throw new ParseError('Number too long');
  }
  if (count === 0) throw new ParseError('Expected a number');
  return n;
}
