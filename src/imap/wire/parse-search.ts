// SEARCH command grammar (RFC 9051 §6.4.4, §9) with ESEARCH RETURN options (RFC 4731) and
// the CONDSTORE MODSEQ key (RFC 7162 §3.1.5). Pure, like parse.ts, of which it is a part.

import { LIMITS } from '../../core/limits.ts';
import type { Command, SearchKey } from './command.ts';
import { ParseError, type Reader } from './reader.ts';
import { flag, sequenceSet, spaceSeparated } from './terms.ts';

const DATE = /^\d{1,2}-[A-Za-z]{3}-\d{4}$/;

export function parseSearch(r: Reader, tag: string, uid: boolean): Command {
  r.sp();
  let ret: string[] | null = null;
  if (r.keyword('RETURN')) {
    // RFC 4731 ESEARCH: SEARCH RETURN (MIN MAX COUNT ALL) ...
    r.sp();
    ret = r.list(() => r.atom().toUpperCase(), true);
    r.sp();
  }
  let charset: string | null = null;
  if (r.keyword('CHARSET')) {
    r.sp();
    charset = r.astring().toUpperCase();
    r.sp();
  }
  const budget = { left: LIMITS.imap.maxSearchKeys };
  const keys = spaceSeparated(r, () => searchKey(r, budget));
  const key: SearchKey = keys.length === 1 ? (keys[0] as SearchKey) : { kind: 'and', keys };
  return { tag, name: 'SEARCH', uid, charset, key, return: ret };
}

const FLAG_KEYS = [
  'ALL',
  'ANSWERED',
  'DELETED',
  'DRAFT',
  'FLAGGED',
  'NEW',
  'OLD',
  'RECENT',
  'SEEN',
  'UNANSWERED',
  'UNDELETED',
  'UNDRAFT',
  'UNFLAGGED',
  'UNSEEN',
] as const;
const STRING_KEYS = ['BCC', 'BODY', 'CC', 'FROM', 'SUBJECT', 'TEXT', 'TO'] as const;
const DATE_KEYS = ['BEFORE', 'ON', 'SINCE', 'SENTBEFORE', 'SENTON', 'SENTSINCE'] as const;

/** One search key; `budget` counts the keys of the command (LIMITS.imap.maxSearchKeys). */
function searchKey(r: Reader, budget: { left: number }): SearchKey {
  if (--budget.left < 0) throw new ParseError('[LIMIT] Too many search keys');
  return r.nested(() => {
    if (r.peek() === 0x28) {
      const keys = r.list(() => searchKey(r, budget));
      return keys.length === 1 ? (keys[0] as SearchKey) : { kind: 'and', keys };
    }
    if (r.peek() === 0x2a || (r.peek() >= 0x30 && r.peek() <= 0x39)) return { kind: 'seq', set: sequenceSet(r) };
    const word = r.atom().toUpperCase();
    const arg = () => {
      r.sp();
      return r.astring();
    };
    if ((FLAG_KEYS as readonly string[]).includes(word)) {
      return { kind: word.toLowerCase() } as SearchKey;
    }
    if ((STRING_KEYS as readonly string[]).includes(word)) {
      return { kind: word.toLowerCase(), value: arg() } as SearchKey;
    }
    if ((DATE_KEYS as readonly string[]).includes(word)) {
      const date = arg();
      if (!DATE.test(date)) throw new ParseError(`Invalid date ${date.slice(0, 20)}`);
      return { kind: word.toLowerCase(), date } as SearchKey;
    }
    switch (word) {
      case 'KEYWORD':
      case 'UNKEYWORD':
        r.sp();
        return { kind: word === 'KEYWORD' ? 'keyword' : 'unkeyword', flag: flag(r) };
      case 'HEADER': {
        const field = arg();
        return { kind: 'header', field, value: arg() };
      }
      case 'LARGER':
      case 'SMALLER':
        r.sp();
        return { kind: word === 'LARGER' ? 'larger' : 'smaller', size: r.number() };
      case 'UID':
        r.sp();
        return { kind: 'uid', set: sequenceSet(r) };
      case 'NOT':
        r.sp();
        return { kind: 'not', key: searchKey(r, budget) };
      case 'OR': {
        r.sp();
        const a = searchKey(r, budget);
        r.sp();
        return { kind: 'or', a, b: searchKey(r, budget) };
      }
      case 'MODSEQ':
        r.sp();
        // RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer. The
        // entry ("/flags/\\seen" ...) names one metadata item; a server that keeps one MODSEQ
        // per message compares that one (RFC 7162 §3.1.5 allows it; Dovecot does the same).
        if (r.peek() === 0x22) {
          r.string();
          r.sp();
          const type = r.atom().toLowerCase();
          if (type !== 'priv' && type !== 'shared' && type !== 'all') throw new ParseError('Invalid entry-type-req');
          r.sp();
        }
        return { kind: 'modseq', modseq: r.number() };
      default:
        throw new ParseError(`Unknown search key ${word.slice(0, 32)}`);
    }
  });
}
