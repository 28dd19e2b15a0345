// The parsed form of every IMAP command we accept (RFC 3501 §6, RFC 9051 §6 and the extensions
// named on each field). Mailbox names are as sent (modified UTF-7 unless UTF8=ACCEPT is enabled);
// the session decodes them.

import type { Literal } from './framer.ts';

/** A sequence set (RFC 9051 §9 sequence-set); `'*'` is the largest number in use. */
export interface SequenceSet {
  readonly ranges: readonly (readonly [number | '*', number | '*'])[];
  /** "$": the saved search result (RFC 5182 SEARCHRES). */
  readonly saved?: boolean;
}

export type SectionText =
  | { readonly kind: 'HEADER' }
  | { readonly kind: 'HEADER.FIELDS'; readonly fields: readonly string[]; readonly not: boolean }
  | { readonly kind: 'TEXT' }
  | { readonly kind: 'MIME' };

/** BODY[section]<partial> (RFC 9051 §6.4.5). */
export interface BodySection {
  readonly part: readonly number[];
  readonly text: SectionText | null;
  readonly partial: { readonly offset: number; readonly length: number } | null;
  readonly peek: boolean;
}

export type FetchItem =
  | { readonly kind: 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'UID' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' }
  | { readonly kind: 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT' }
  | { readonly kind: 'MODSEQ' }
  /** RFC 3516: a part with its content-transfer-encoding undone. */
  | {
      readonly kind: 'BINARY';
      readonly part: readonly number[];
      readonly partial: { readonly offset: number; readonly length: number } | null;
      readonly peek: boolean;
    }
  | { readonly kind: 'BINARY.SIZE'; readonly part: readonly number[] }
  /** `legacy` names the RFC822, RFC822.HEADER and RFC822.TEXT forms, answered under that name. */
  | ({ readonly kind: 'BODY[]'; readonly legacy?: 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT' } & BodySection);

export type SearchKey =
  | { readonly kind: 'all' | 'answered' | 'deleted' | 'draft' | 'flagged' | 'new' | 'old' | 'recent' | 'seen' }
  | { readonly kind: 'unanswered' | 'undeleted' | 'undraft' | 'unflagged' | 'unseen' }
  | { readonly kind: 'keyword' | 'unkeyword'; readonly flag: string }
  | { readonly kind: 'bcc' | 'body' | 'cc' | 'from' | 'subject' | 'text' | 'to'; readonly value: string }
  | { readonly kind: 'header'; readonly field: string; readonly value: string }
  | { readonly kind: 'before' | 'on' | 'since' | 'sentbefore' | 'senton' | 'sentsince'; readonly date: string }
  | { readonly kind: 'larger' | 'smaller'; readonly size: number }
  | { readonly kind: 'uid' | 'seq'; readonly set: SequenceSet }
  | { readonly kind: 'not'; readonly key: SearchKey }
  | { readonly kind: 'or'; readonly a: SearchKey; readonly b: SearchKey }
  | { readonly kind: 'and'; readonly keys: readonly SearchKey[] }
  | { readonly kind: 'modseq'; readonly modseq: number };

/** RFC 7162 §3.2.5 SELECT/EXAMINE (QRESYNC (...)). */
export interface QresyncParams {
  readonly uidValidity: number;
  readonly modseq: number;
  readonly knownUids: SequenceSet | null;
  readonly seqMatch: { readonly seqs: SequenceSet; readonly uids: SequenceSet } | null;
}

export interface AppendMessage {
  readonly flags: readonly string[];
  /** INTERNALDATE as sent (RFC 9051 date-time), or null. */
  readonly date: string | null;
  readonly data: Literal;
  /** Sent as UTF8 (literal8) (RFC 6855 §4). */
  readonly utf8: boolean;
}

interface Tagged {
  readonly tag: string;
}

export type Command = Tagged &
  (
    | {
        readonly name:
          | 'CAPABILITY'
          | 'NOOP'
          | 'LOGOUT'
          | 'STARTTLS'
          | 'CHECK'
          | 'CLOSE'
          | 'UNSELECT'
          | 'IDLE'
          | 'NAMESPACE';
      }
    | { readonly name: 'LOGIN'; readonly user: string; readonly password: string }
    | { readonly name: 'AUTHENTICATE'; readonly mechanism: string; readonly initial: string | null }
    | {
        readonly name: 'SELECT' | 'EXAMINE';
        readonly mailbox: string;
        readonly condstore: boolean;
        readonly qresync: QresyncParams | null;
      }
    | { readonly name: 'CREATE'; readonly mailbox: string; readonly specialUse: readonly string[] }
    | { readonly name: 'DELETE' | 'SUBSCRIBE' | 'UNSUBSCRIBE'; readonly mailbox: string }
    | { readonly name: 'RENAME'; readonly from: string; readonly to: string }
    | {
        readonly name: 'LIST';
        readonly reference: string;
        readonly patterns: readonly string[];
        readonly select: readonly string[];
        readonly return: readonly string[];
        readonly statusItems: readonly string[];
      }
    | { readonly name: 'LSUB'; readonly reference: string; readonly pattern: string }
    | { readonly name: 'STATUS'; readonly mailbox: string; readonly items: readonly string[] }
    | { readonly name: 'APPEND'; readonly mailbox: string; readonly messages: readonly AppendMessage[] }
    | { readonly name: 'EXPUNGE'; readonly uids: SequenceSet | null }
    | {
        readonly name: 'SEARCH';
        readonly uid: boolean;
        readonly charset: string | null;
        readonly key: SearchKey;
        readonly return: readonly string[] | null;
      }
    | {
        readonly name: 'FETCH';
        readonly uid: boolean;
        readonly set: SequenceSet;
        readonly items: readonly FetchItem[];
        readonly changedSince: number | null;
        /** RFC 7162 §3.2.6: also report expunged UIDs (VANISHED (EARLIER)). */
        readonly vanished: boolean;
      }
    | {
        readonly name: 'STORE';
        readonly uid: boolean;
        readonly set: SequenceSet;
        readonly mode: 'set' | 'add' | 'remove';
        readonly silent: boolean;
        readonly flags: readonly string[];
        readonly unchangedSince: number | null;
      }
    | { readonly name: 'COPY' | 'MOVE'; readonly uid: boolean; readonly set: SequenceSet; readonly mailbox: string }
    | { readonly name: 'ENABLE'; readonly capabilities: readonly string[] }
    | { readonly name: 'GETQUOTAROOT'; readonly mailbox: string }
    | { readonly name: 'COMPRESS'; readonly mechanism: string }
    | { readonly name: 'GETQUOTA'; readonly root: string }
    | { readonly name: 'ID'; readonly params: Readonly<Record<string, string | null>> | null }
  );

export type CommandName = Command['name'];

/** The command(s) named N, e.g. CommandOf<'SELECT'> (works where one member has two names). */
export type CommandOf<N extends CommandName> = Command & { readonly name: N };
