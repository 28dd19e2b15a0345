// Several milters in order, as sendmail runs them: each sees the message as the milters before
// it left it (their header edits applied, their replacement body), so a signing milter placed
// after a rewriting one signs what is delivered. The first refusal (reject, tempfail, custom
// reply, discard) ends the chain; a milter that fails (unreachable, timeout, protocol error)
// is handled by its on_failure: skipped ("accept"), or the message is refused.
//
// The body is never read into memory: unchanged, each milter streams it from the spool past
// the header; replaced, from the replacement spool (bounded by the message size limit). The
// header block is held as parsed lines (bounded by max_header_size plus
// LIMITS.milter.maxHeaderGrowthBytes after edits).

import type { MilterConfig } from '../../config/milter.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';
import { milterResults } from '../../core/metrics.ts';
import { bytesAfter } from '../../store/spool.ts';
import type { SpooledMessage, SpoolWriter } from '../../store/types.ts';
import {
  type HeaderLine,
  type MilterContext,
  MilterFailure,
  type MilterSettings,
  runSession,
  type SessionOutcome,
} from './client.ts';
import type { ReplyText } from './codec.ts';
import { applyEdits, parseHeader, serializeHeader } from './headers.ts';

export interface ChainMilter extends MilterSettings {
  readonly onFailure: MilterConfig['on_failure'];
}

export function chainMilter(c: MilterConfig): ChainMilter {
  return {
    name: c.name,
    address: c.address,
    connectTimeoutMs: c.connect_timeout,
    commandTimeoutMs: c.command_timeout,
    eomTimeoutMs: c.eom_timeout,
    macros: c.macros,
    onFailure: c.on_failure,
  };
}

export interface ChainInput {
  readonly context: MilterContext;
  /** The header block (fields ending in CRLF, no empty line). */
  readonly head: Buffer;
  /** The whole message; its body starts at `bodyOffset` (after the empty line). */
  readonly message: SpooledMessage;
  readonly bodyOffset: number;
  readonly createSpool: () => SpoolWriter;
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly log: Logger;
}

export type ChainResult =
  | {
      readonly kind: 'pass';
      /** The new header block, or null: unchanged. */
      readonly head: Buffer | null;
      /** The replacement body (the caller disposes it), or null: unchanged. */
      readonly body: SpooledMessage | null;
      readonly quarantine: { readonly milter: string; readonly reason: string } | null;
    }
  | {
      readonly kind: 'refuse';
      readonly milter: string;
      /** The milter's own reply, or null: ours for `temporary`. */
      readonly reply: ReplyText | null;
      readonly temporary: boolean;
      /** Why, for the log: the step it refused at, or the failure. */
      readonly reason: string;
    }
  | { readonly kind: 'discard'; readonly milter: string; readonly reason: string };

export async function runChain(milters: readonly ChainMilter[], input: ChainInput): Promise<ChainResult> {
  let fields: HeaderLine[] = parseHeader(input.head);
  let headChanged = false;
  let body: SpooledMessage | null = null;
  let quarantine: { milter: string; reason: string } | null = null;
  const maxHead = input.maxHeaderBytes + LIMITS.milter.maxHeaderGrowthBytes;
  try {
    for (const m of milters) {
      const current = body;
      const message = {
        fields,
        body: () => (current ? bytesAfter(current, 0) : bytesAfter(input.message, input.bodyOffset)),
      };
      let outcome: SessionOutcome | null = null;
      let next: HeaderLine[] | null = null;
      try {
        outcome = await runSession(m, input.context, message, {
          createSpool: input.createSpool,
          maxBodyBytes: input.maxBodyBytes,
        });
        if (outcome.kind === 'continue' && outcome.edits.length > 0) {
          next = applyEdits(fields, outcome.edits, outcome.leadingSpace);
          if (serializeHeader(next).length > maxHead) throw new MilterFailure('header grown over its limit');
        }
      } catch (e) {
        if (!(e instanceof MilterFailure)) throw e;
        if (outcome?.kind === 'continue') await outcome.body?.dispose();
        milterResults.inc({ milter: m.name, result: 'failure' });
        input.log.warn({ milter: m.name, error: e.message, on_failure: m.onFailure }, 'milter failed');
        if (m.onFailure === 'accept') continue;
        return {
          kind: 'refuse',
          milter: m.name,
          reply: null,
          temporary: m.onFailure === 'tempfail',
          reason: e.message,
        };
      }
      if (!outcome) continue;
      const o = outcome;
      if (o.kind === 'accept') {
        milterResults.inc({ milter: m.name, result: 'accept' });
        continue;
      }
      if (o.kind === 'discard') {
        milterResults.inc({ milter: m.name, result: 'discard' });
        return { kind: 'discard', milter: m.name, reason: `discard at ${o.step}` };
      }
      if (o.kind !== 'continue') {
        milterResults.inc({ milter: m.name, result: o.kind });
        return {
          kind: 'refuse',
          milter: m.name,
          reply: o.reply,
          temporary: o.kind === 'tempfail',
          reason: `${o.kind} at ${o.step}`,
        };
      }
      if (next) {
        fields = next;
        headChanged = true;
      }
      if (o.body) {
        await body?.dispose();
        body = o.body;
      }
      if (o.quarantine !== null) quarantine ??= { milter: m.name, reason: o.quarantine };
      milterResults.inc({ milter: m.name, result: o.quarantine !== null ? 'quarantine' : 'continue' });
    }
    const result: ChainResult = { kind: 'pass', head: headChanged ? serializeHeader(fields) : null, body, quarantine };
    body = null; // handed over
    return result;
  } finally {
    await body?.dispose();
  }
}
