// One milter session, MTA side (Sendmail's milter protocol, version 6; the reference is
// libmilter's documentation and mfdef.h, and Postfix's MILTER_README): option negotiation,
// then the events of one SMTP transaction in order (connect, helo, mail, each rcpt, data, each
// header, end of headers, the body in chunks of at most 65535 bytes streamed from the spool,
// end of message), then the milter's modifications and its verdict.
//
// Steps the milter asked to leave out (SMFIP_NO*) are not sent; steps it answers nothing to
// (SMFIP_NR_*) are not waited for. A reply other than "continue" ends the session early:
// accept (no more filtering by this milter, nothing changed), reject, tempfail, custom reply,
// discard. Each reply has command_timeout, the end of message eom_timeout (SMFIR_PROGRESS
// restarts it, up to LIMITS.milter.maxEomMs in all). Anything else (unreachable, timeout,
// malformed packet, a reply not allowed where it came, a modification not negotiated, an
// envelope change, a body replacement over the size limit) throws MilterFailure: the chain
// applies the milter's on_failure.

import type { MilterAddress } from '../../config/milter.ts';
import { CrlfNormalizer } from '../../core/crlf.ts';
import { LIMITS } from '../../core/limits.ts';
import type { SpooledMessage, SpoolWriter } from '../../store/types.ts';
import {
  ACTION,
  CMD,
  decodeReply,
  encodeAddress,
  encodeBare,
  encodeBody,
  encodeConnect,
  encodeHeader,
  encodeHelo,
  encodeMacros,
  encodeOptneg,
  type MacroStage,
  OFFERED_ACTIONS,
  OFFERED_PROTOCOL,
  PROTO,
  PROTOCOL_VERSION,
  type Reply,
  type ReplyText,
} from './codec.ts';
import { MilterConnection, MilterFailure } from './connection.ts';

export { MilterFailure };

/** A header line of the message as latin1 text (one character per byte). `value` is what
 *  follows the colon, folding CRLFs included, without the final CRLF; null: a line that is no
 *  field (kept in place, never shown to milters). */
export interface HeaderLine {
  readonly name: string;
  readonly value: string | null;
  /** White space between the name and the colon (obsolete syntax, RFC 5322 §4.5), kept. */
  readonly gap?: string;
}

export interface MilterMessage {
  readonly fields: readonly HeaderLine[];
  /** The body (after the empty line), streamed; may be called once per milter. */
  body(): AsyncIterable<Buffer>;
}

/** The SMTP session and transaction as a milter sees them (replayed at end of DATA). */
export interface MilterContext {
  readonly client: { readonly address: string; readonly port: number; readonly hostname: string | null };
  readonly helo: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly macros: {
    /** {j}: our host name. */
    readonly hostname: string;
    readonly daemonName: string;
    /** {i}: the message id of our logs. */
    readonly queueId: string;
    readonly authAuthen: string | null;
    readonly tlsVersion: string | null;
    readonly cipher: string | null;
  };
}

export interface MilterSettings {
  readonly name: string;
  readonly address: MilterAddress;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
  readonly eomTimeoutMs: number;
  readonly macros: Readonly<Record<string, string>>;
}

export type HeaderEdit =
  | { readonly kind: 'addheader'; readonly name: string; readonly value: string }
  | { readonly kind: 'chgheader' | 'insheader'; readonly index: number; readonly name: string; readonly value: string };

export type Step = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'header' | 'eoh' | 'body' | 'eom';

export type SessionOutcome =
  | { readonly kind: 'accept'; readonly step: Step }
  | {
      readonly kind: 'continue';
      readonly edits: readonly HeaderEdit[];
      /** The replacement body (CRLF line endings), or null: unchanged. The caller disposes it. */
      readonly body: SpooledMessage | null;
      readonly quarantine: string | null;
      /** SMFIP_HDR_LEADSPC: header values are exact (no space to add after the colon). */
      readonly leadingSpace: boolean;
    }
  | { readonly kind: 'reject' | 'tempfail'; readonly reply: ReplyText | null; readonly step: Step }
  | { readonly kind: 'discard'; readonly step: Step };

export interface SessionOptions {
  readonly createSpool: () => SpoolWriter;
  /** Largest replacement body accepted. */
  readonly maxBodyBytes: number;
}

type Ended = Extract<SessionOutcome, { kind: 'accept' | 'reject' | 'tempfail' | 'discard' }>;

/** Runs one session; resolves with the milter's verdict, throws MilterFailure. */
export async function runSession(
  s: MilterSettings,
  ctx: MilterContext,
  message: MilterMessage,
  o: SessionOptions,
): Promise<SessionOutcome> {
  const conn = await MilterConnection.open(s.address, s.connectTimeoutMs);
  let ok = false;
  try {
    const out = await new Session(s, ctx, conn).run(message, o);
    ok = true;
    return out;
  } finally {
    conn.close(ok ? encodeBare(CMD.quit) : undefined);
  }
}

class Session {
  readonly #s: MilterSettings;
  readonly #ctx: MilterContext;
  readonly #conn: MilterConnection;
  #actions = 0;
  #protocol = 0;
  #symlists: ReadonlyMap<MacroStage, readonly string[]> = new Map();

  constructor(s: MilterSettings, ctx: MilterContext, conn: MilterConnection) {
    this.#s = s;
    this.#ctx = ctx;
    this.#conn = conn;
  }

  #deadline(ms = this.#s.commandTimeoutMs): number {
    return performance.now() + ms;
  }

  #has(flag: number): boolean {
    return (this.#protocol & flag) !== 0;
  }

  async run(message: MilterMessage, o: SessionOptions): Promise<SessionOutcome> {
    await this.#negotiate();
    const ctx = this.#ctx;
    const c = ctx.client;
    const family = c.address.includes(':') ? '6' : c.address === '' ? 'U' : '4';
    const steps: [Step, number, number, () => Buffer[]][] = [
      [
        'connect',
        PROTO.noConnect,
        PROTO.nrConnect,
        () => [encodeConnect(c.hostname ?? `[${c.address}]`, family, c.port, c.address)],
      ],
      ['helo', PROTO.noHelo, PROTO.nrHelo, () => [encodeHelo(ctx.helo)]],
      ['mail', PROTO.noMail, PROTO.nrMail, () => [encodeAddress(CMD.mail, ctx.sender)]],
    ];
    for (const [step, no, nr, packets] of steps) {
      if (this.#has(no)) continue;
      const r = await this.#ask(step, packets(), nr);
      if (r !== 'continue') return r as Ended;
    }
    if (!this.#has(PROTO.noRcpt)) {
      for (const rcpt of ctx.recipients) {
        const r = await this.#ask('rcpt', [encodeAddress(CMD.rcpt, rcpt)], PROTO.nrRcpt, rcpt);
        if (r !== 'continue') return r as Ended;
      }
    }
    if (!this.#has(PROTO.noData)) {
      const r = await this.#ask('data', [encodeBare(CMD.data)], PROTO.nrData);
      if (r !== 'continue') return r as Ended;
    }
    if (!this.#has(PROTO.noHeaders)) {
      const lead = this.#has(PROTO.headerLeadingSpace);
      for (const f of message.fields) {
        if (f.value === null) continue;
        const r = await this.#ask('header', [encodeHeader(f.name, wireValue(f.value, lead))], PROTO.nrHeader);
        if (r !== 'continue') return r as Ended;
      }
    }
    if (!this.#has(PROTO.noEoh)) {
      const r = await this.#ask('eoh', [encodeBare(CMD.eoh)], PROTO.nrEoh);
      if (r !== 'continue') return r as Ended;
    }
    if (!this.#has(PROTO.noBody)) {
      const r = await this.#body(message);
      if (r !== 'continue') return r;
    }
    return this.#eom(o);
  }

  async #negotiate(): Promise<void> {
    const deadline = this.#deadline(this.#s.connectTimeoutMs);
    await this.#conn.send(encodeOptneg(PROTOCOL_VERSION, OFFERED_ACTIONS, OFFERED_PROTOCOL), deadline);
    const r = decodeReply(await this.#conn.next(deadline, 'option negotiation'));
    if (r.kind !== 'optneg') throw new MilterFailure(`option negotiation answered with ${r.kind}`);
    if (r.version < 2 || r.version > PROTOCOL_VERSION) throw new MilterFailure(`milter protocol version ${r.version}`);
    if ((r.actions & ~OFFERED_ACTIONS) !== 0) throw new MilterFailure('milter asks for actions not offered');
    // Bits we did not offer (SMFIP_MDS_*: larger packets) are not granted.
    this.#actions = r.actions;
    this.#protocol = r.protocol & OFFERED_PROTOCOL;
    this.#symlists = r.macros;
  }

  /** The macros of a stage: ours (connect: with the configured ones), filtered by the list the
   *  milter asked for, if it asked. */
  #macros(stage: MacroStage, rcpt?: string): [string, string][] {
    const m = this.#ctx.macros;
    const c = this.#ctx.client;
    let list: [string, string][] = [];
    if (stage === 'C') {
      const mine: Record<string, string> = {
        j: m.hostname,
        '{daemon_name}': m.daemonName,
        '{client_addr}': c.address,
        '{client_port}': String(c.port),
        '{client_name}': c.hostname ?? `[${c.address}]`,
        _: `${c.hostname ?? 'unknown'} [${c.address}]`,
        v: 'arcline',
        ...this.#s.macros,
      };
      list = Object.entries(mine);
    } else if (stage === 'H') {
      if (m.tlsVersion) list.push(['{tls_version}', m.tlsVersion]);
      if (m.cipher) list.push(['{cipher}', m.cipher]);
    } else if (stage === 'M') {
      list.push(['i', m.queueId], ['{mail_addr}', this.#ctx.sender]);
      if (m.authAuthen) list.push(['{auth_authen}', m.authAuthen]);
    } else if (stage === 'R') {
      list.push(['{rcpt_addr}', rcpt ?? '']);
    } else if (stage === 'T' || stage === 'E') {
      list.push(['i', m.queueId]);
    }
    const wanted = this.#symlists.get(stage);
    if (wanted) list = list.filter(([k]) => wanted.includes(k) || wanted.includes(`{${k}}`));
    return list;
  }

  /** Sends one step (its macros first) and, unless the milter said it will not answer, reads
   *  the reply: 'continue', 'skip' (body only) or how the session ended. */
  async #ask(
    step: Step,
    packets: readonly Buffer[],
    nrFlag: number,
    rcpt?: string,
  ): Promise<'continue' | 'skip' | Ended> {
    const deadline = this.#deadline();
    const stage = STAGE_OF[step];
    if (stage) {
      const macros = this.#macros(stage, rcpt);
      if (macros.length > 0) await this.#conn.send(encodeMacros(COMMAND_OF[stage], macros), deadline);
    }
    for (const p of packets) await this.#conn.send(p, deadline);
    if (this.#has(nrFlag)) return 'continue';
    for (;;) {
      const r = decodeReply(await this.#conn.next(deadline, `${step} reply`));
      if (r.kind === 'progress') continue;
      if (r.kind === 'continue') return 'continue';
      if (r.kind === 'skip' && step === 'body' && this.#has(PROTO.skip)) return 'skip';
      const ended = verdict(r, step);
      if (ended) return ended;
      throw new MilterFailure(`reply ${r.kind} not allowed after ${step}`);
    }
  }

  /** The body from the spool, in chunks of at most 65535 bytes, never held whole. */
  async #body(message: MilterMessage): Promise<'continue' | Ended> {
    const max = LIMITS.milter.bodyChunkBytes;
    for await (const chunk of message.body()) {
      for (let at = 0; at < chunk.length; at += max) {
        const r = await this.#ask('body', [encodeBody(chunk.subarray(at, at + max))], PROTO.nrBody);
        if (r === 'skip') return 'continue';
        if (r !== 'continue') return r;
      }
    }
    return 'continue';
  }

  /** End of message: the modifications, then the verdict. */
  async #eom(o: SessionOptions): Promise<SessionOutcome> {
    const started = performance.now();
    let deadline = this.#deadline(this.#s.eomTimeoutMs);
    const last = started + Math.max(this.#s.eomTimeoutMs, LIMITS.milter.maxEomMs);
    const macros = this.#macros('E');
    if (macros.length > 0) await this.#conn.send(encodeMacros(CMD.eom, macros), deadline);
    await this.#conn.send(encodeBare(CMD.eom), deadline);
    const edits: HeaderEdit[] = [];
    let quarantine: string | null = null;
    let body: { spool: SpoolWriter; crlf: CrlfNormalizer; size: number } | null = null;
    let changes = 0;
    let progress = 0;
    try {
      for (;;) {
        const r = decodeReply(await this.#conn.next(Math.min(deadline, last), 'end-of-message reply'));
        switch (r.kind) {
          case 'progress':
            if (++progress > LIMITS.milter.maxProgress) throw new MilterFailure('too many progress replies');
            deadline = this.#deadline(this.#s.eomTimeoutMs);
            continue;
          case 'addheader':
          case 'chgheader':
          case 'insheader':
            this.#allowed(r.kind === 'chgheader' ? ACTION.changeHeaders : ACTION.addHeaders, r.kind);
            if (++changes > LIMITS.milter.maxModifications) throw new MilterFailure('too many modifications');
            edits.push(r);
            continue;
          case 'quarantine':
            this.#allowed(ACTION.quarantine, r.kind);
            quarantine = r.reason || 'quarantined';
            continue;
          case 'replbody': {
            this.#allowed(ACTION.changeBody, r.kind);
            body ??= { spool: o.createSpool(), crlf: new CrlfNormalizer(), size: 0 };
            const bytes = body.crlf.push(r.chunk);
            body.size += bytes.length;
            if (body.size > o.maxBodyBytes) throw new MilterFailure('replacement body over the size limit');
            await body.spool.write(bytes);
            continue;
          }
          case 'envelope':
            throw new MilterFailure(`envelope change (${r.what}) is not supported`);
          case 'accept':
          case 'continue': {
            let replaced: SpooledMessage | null = null;
            if (body) {
              await body.spool.write(body.crlf.end());
              replaced = await body.spool.finish();
              body = null;
            }
            return {
              kind: 'continue',
              edits,
              body: replaced,
              quarantine,
              leadingSpace: this.#has(PROTO.headerLeadingSpace),
            };
          }
          default: {
            const ended = verdict(r, 'eom');
            if (ended) return ended;
            throw new MilterFailure(`reply ${r.kind} not allowed at end of message`);
          }
        }
      }
    } finally {
      await body?.spool.abort();
    }
  }

  #allowed(flag: number, what: string): void {
    if ((this.#actions & flag) === 0) throw new MilterFailure(`${what} without having negotiated it`);
  }
}

/** The replies that end a session (libmilter's xxfi_* return codes), or null. */
function verdict(r: Reply, step: Step): Ended | null {
  switch (r.kind) {
    case 'accept':
      return { kind: 'accept', step };
    case 'reject':
      return { kind: 'reject', reply: null, step };
    case 'tempfail':
      return { kind: 'tempfail', reply: null, step };
    case 'replycode':
      return { kind: r.reply.code >= 500 ? 'reject' : 'tempfail', reply: r.reply, step };
    case 'discard':
      return { kind: 'discard', step };
    default:
      return null;
  }
}

const STAGE_OF: Partial<Record<Step, MacroStage>> = {
  connect: 'C',
  helo: 'H',
  mail: 'M',
  rcpt: 'R',
  data: 'T',
  eoh: 'N',
};
const COMMAND_OF: Record<MacroStage, string> = {
  C: CMD.connect,
  H: CMD.helo,
  M: CMD.mail,
  R: CMD.rcpt,
  T: CMD.data,
  E: CMD.eom,
  N: CMD.eoh,
};

/** A header value as milters get it: folding CRLF as LF (libmilter's convention: "the MTA
 *  adds the CR"), leading white space dropped unless SMFIP_HDR_LEADSPC was negotiated. */
export function wireValue(raw: string, leadingSpace: boolean): string {
  let v = raw.replaceAll('\r\n', '\n');
  if (!leadingSpace) {
    let i = 0;
    while (i < v.length && (v.charCodeAt(i) === 0x20 || v.charCodeAt(i) === 0x09)) i++;
    v = v.slice(i);
  }
  return v;
}
