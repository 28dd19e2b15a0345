// What an SMTP session did, for the metrics and the access log (issue #14, docs/logging.md):
// the connection (connection.ts) tells it each command verb it takes, each reply code it
// queues, the DATA bytes and the TLS handshake; this turns them into
//   - arcline_smtp_replies_total{service, command, class} (pre-bound children, one Map lookup
//     per reply), arcline_smtp_transactions_total and arcline_tls_handshakes_total;
//   - one access line per mail transaction ("smtp access"): from MAIL to the reply after DATA,
//     or to RSET, EHLO/HELO, STARTTLS, QUIT or the connection's end with a transaction open.
// Label values are closed sets: a verb we do not know is UNKNOWN. Nothing here writes to the
// wire or decides anything.

import type { Logger } from '../core/log.ts';
import { boundCounter3, countTls, smtpReplies, smtpTransactions } from '../core/metrics.ts';

/** Verbs with their own label value; anything else counts as UNKNOWN. */
const VERBS = new Set([
  'CONNECT',
  'EHLO',
  'HELO',
  'MAIL',
  'RCPT',
  'DATA',
  'BDAT',
  'RSET',
  'NOOP',
  'VRFY',
  'EXPN',
  'HELP',
  'QUIT',
  'STARTTLS',
  'AUTH',
  'UNKNOWN',
]);
const CLASSES = ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** The steps of one transaction kept for its access line (bounded). */
const MAX_STEPS = 24;

/** What the access line reads from the session when it is written. */
export interface AccessSession {
  readonly remoteAddress: string;
  readonly user: string | null;
}

interface Txn {
  readonly start: number;
  readonly steps: string[];
  last: string;
  repeat: number;
  bytes: number;
  msgId: string;
}

export class SmtpAccess {
  readonly #service: 'smtp' | 'submission';
  /** null: no access lines ([log] access = "off"); the metrics are counted all the same. */
  readonly #log: Logger | null;
  readonly #session: AccessSession;
  readonly #count: (command: string, cls: string) => void;
  readonly #txnResult: { accepted: () => void; refused: () => void; abandoned: () => void };
  #verb = 'CONNECT';
  /** The open transaction, from the 250 to MAIL; null outside one. */
  #txn: Txn | null = null;

  constructor(service: 'smtp' | 'submission', log: Logger | null, session: AccessSession) {
    this.#service = service;
    this.#log = log;
    this.#session = session;
    this.#count = counters(service);
    this.#txnResult = transactionCounters(service);
  }

  /** A command line was taken (its verb as parsed; SYNTAX and NOT-IMPLEMENTED carry theirs). */
  command(verb: string): void {
    this.#verb = VERBS.has(verb) ? verb : 'UNKNOWN';
    if (this.#txn && (verb === 'RSET' || verb === 'EHLO' || verb === 'HELO' || verb === 'STARTTLS')) {
      this.#end(verb, 0);
    }
  }

  /** A reply was queued, for the command taken last. */
  reply(code: number): void {
    const verb = this.#verb;
    this.#count(verb, CLASSES[(code / 100) | 0] ?? '5xx');
    if (verb === 'MAIL' && code === 250 && this.#txn === null) {
      this.#txn = { start: Date.now(), steps: [], last: '', repeat: 0, bytes: 0, msgId: '' };
    }
    const txn = this.#txn;
    if (!txn) return;
    this.#step(txn, `${verb}:${code}`);
    // RFC 5321 §4.1.1.4: the reply after the data ends the transaction, accepted or not.
    if (verb === 'DATA' && code !== 354) this.#end('DATA', code);
    else if (verb === 'QUIT' || (verb === 'CONNECT' && code === 421)) this.#end(verb, 0);
  }

  /** Bytes of DATA read (dot-stuffed, as on the wire). */
  dataBytes(n: number): void {
    if (this.#txn) this.#txn.bytes += n;
  }

  /** The message's id (`msg_id` of its log lines), once DATA started. */
  messageId(id: string): void {
    if (this.#txn) this.#txn.msgId = id;
  }

  /** A TLS handshake ended: its version, or null when it failed. */
  tls(version: string | null): void {
    countTls(this.#service, version);
  }

  /** The connection closed: an open transaction is written as abandoned. */
  closed(): void {
    if (this.#txn) this.#end('CLOSE', 0);
  }

  #step(txn: Txn, step: string): void {
    if (step === txn.last) {
      txn.repeat++;
      return;
    }
    this.#flushRepeat(txn);
    txn.last = step;
    if (txn.steps.length < MAX_STEPS) txn.steps.push(step);
    else if (txn.steps.length === MAX_STEPS) txn.steps.push('...');
  }

  #flushRepeat(txn: Txn): void {
    if (txn.repeat > 0 && txn.steps.length > 0 && txn.steps.length <= MAX_STEPS) {
      txn.steps[txn.steps.length - 1] += `x${txn.repeat + 1}`;
    }
    txn.repeat = 0;
  }

  /** Writes the access line of the open transaction; `code` is the DATA reply, 0 for none. */
  #end(by: string, code: number): void {
    const txn = this.#txn;
    if (!txn) return;
    this.#txn = null;
    this.#flushRepeat(txn);
    const result = code === 0 || by !== 'DATA' ? 'abandoned' : code < 400 ? 'accepted' : 'refused';
    this.#txnResult[result]();
    const s = this.#session;
    this.#log?.info(
      {
        access: 'smtp',
        protocol: this.#service,
        client: s.remoteAddress,
        user: s.user,
        commands: txn.steps.join(' '),
        result,
        code,
        ended_by: by,
        bytes: txn.bytes,
        duration_ms: Date.now() - txn.start,
        ...(txn.msgId ? { msg_id: txn.msgId } : {}),
      },
      'smtp access',
    );
  }
}

const replyCounters = new Map<string, (command: string, cls: string) => void>();
function counters(service: string): (command: string, cls: string) => void {
  let c = replyCounters.get(service);
  if (!c) {
    c = boundCounter3(smtpReplies, ['service', 'command', 'class'], service);
    replyCounters.set(service, c);
  }
  return c;
}

type TxnCounters = { accepted: () => void; refused: () => void; abandoned: () => void };
const txnCounters = new Map<string, TxnCounters>();
function transactionCounters(service: string): TxnCounters {
  let c = txnCounters.get(service);
  if (!c) {
    const bind = (result: string) => {
      const child = smtpTransactions.labels({ service, result });
      return () => child.inc();
    };
    c = { accepted: bind('accepted'), refused: bind('refused'), abandoned: bind('abandoned') };
    txnCounters.set(service, c);
  }
  return c;
}
