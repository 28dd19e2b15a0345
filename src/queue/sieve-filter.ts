// Sieve at delivery (RFC 5228; docs/sieve.md, docs/architecture.md §3): for every local copy the
// Dispatcher is about to deliver, the account's active script (after the [sieve] before script)
// decides where it goes. This module turns a script's outcome into a plan the Dispatcher carries
// out with its usual durability order: the local copies (mailbox, flags), the redirected copies
// (queued with an SRS envelope sender), and what is sent once the copies are durable: vacation
// replies (RFC 5230), rejection notices (RFC 5429 §2.1) and duplicate tracking (RFC 7352).
//
// Errors: a script that fails to compile or run keeps the message (implicit keep into the copy's
// own mailbox, RFC 5228 §2.10.6) and the error is logged; a filter failure never loses mail.

import { createHash } from 'node:crypto';
import { errorMessage } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { LruMap } from '../core/lru.ts';
import type { Script } from '../sieve/ast.ts';
import type { SieveAction, SieveContext, SieveEnvelope, SieveMessage, SieveOutcome } from '../sieve/run-types.ts';
import { traceHeaders } from '../smtp/trace.ts';
import type { DeliveryTarget, SpooledMessage } from '../store/types.ts';
import { readHeaderBlock } from './runner.ts';
import type { OutboundRecipient } from './types.ts';

type VacationAction = Extract<SieveAction, { kind: 'vacation' }>;

/** What the filter needs, as plain functions (the composition root adapts the stores). */
export interface SieveFilterDeps {
  /** The account's active script, or null. */
  readonly activeScript: (account: AccountId) => Promise<{ readonly name: string; readonly content: Buffer } | null>;
  /** The [sieve] before script (compiled at start), or null. */
  readonly before: Script | null;
  readonly compile: (source: Buffer) => Script | { readonly error: string };
  readonly run: (script: Script, msg: SieveMessage, env: SieveEnvelope, ctx: SieveContext) => Promise<SieveOutcome>;
  readonly message: (head: Buffer, size: number, raw: () => Promise<Buffer>) => SieveMessage;
  readonly mailboxExists: (account: AccountId, name: string) => Promise<boolean>;
  readonly include: (account: AccountId, name: string, where: 'personal' | 'global') => Promise<Script | null>;
  readonly duplicateSeen: (account: AccountId, handle: string, id: string, seconds: number) => Promise<boolean>;
  readonly duplicateTrack: (account: AccountId, handle: string, id: string, seconds: number) => Promise<void>;
  /** Local accounts an address delivers to and the remote addresses it forwards to. */
  readonly resolve: (address: string) => Promise<{ accounts: readonly AccountId[]; remote: readonly string[] } | null>;
  /** The envelope sender a copy forwarded through one of our domains leaves with (SRS,
   *  docs/srs.md: SenderRewriter.forwardSender). */
  readonly forwardSender: (sender: string, viaDomain: string) => Promise<string>;
  /** Vacation (RFC 5230): sends the reply when it is due; resolves when queued or skipped. */
  readonly vacation: (
    account: AccountId,
    action: Extract<SieveAction, { kind: 'vacation' }>,
    original: { readonly sender: string; readonly msg: SieveMessage; readonly ownAddresses: readonly string[] },
  ) => Promise<void>;
  /** The account's JMAP VacationResponse (RFC 8621 §8) when it is enabled and in its dates, as
   *  one more vacation action after the scripts; absent or null: none. */
  readonly jmapVacation?: (account: AccountId) => Promise<VacationAction | null>;
  /** RFC 5429 §2.1: a rejection notice to the sender (never to the null sender). */
  readonly rejectNotice: (
    account: AccountId,
    reason: string,
    original: { head: Buffer; sender: string },
  ) => Promise<void>;
  readonly log: Logger;
}

export interface FilterRequest {
  readonly sender: string;
  readonly local: readonly DeliveryTarget[];
  readonly message: SpooledMessage;
  readonly authUser?: string | null;
  readonly logId: string;
  /** The message may still be refused as a whole (nothing else is delivered or queued): a
   *  reject of every copy then becomes the SMTP reply (RFC 5429 §2.1) instead of a notice. */
  readonly refusable?: boolean;
}

/** A copy redirected elsewhere: its own queue entry, since its envelope sender differs. */
export interface FilterForward {
  readonly sender: string;
  /** The domain that forwards (the redirecting account's): its key seals the copy (ARC). */
  readonly via: string;
  readonly recipients: readonly OutboundRecipient[];
  readonly prefix: Buffer;
}

export interface FilterPlan {
  readonly local: readonly DeliveryTarget[];
  readonly forwards: readonly FilterForward[];
  /** Runs once the local copies are durable and the forwards queued: vacation replies,
   *  rejection notices, duplicate tracking. Never throws (failures are logged). */
  readonly after: () => Promise<void>;
  /** Every copy was rejected and the request is refusable: the reason to refuse the message
   *  with (5.7.1); nothing is delivered, queued or sent. */
  readonly refused: string | null;
}

/** Header fields a redirected copy carries so a second pass through us does not loop. */
const REDIRECTED = 'X-Sieve-Redirected-From';

export class SieveFilter {
  readonly #d: SieveFilterDeps;
  readonly #compiled = new LruMap<string, Script | { readonly error: string }>(LIMITS.sieveDelivery.compiledCache);

  constructor(deps: SieveFilterDeps) {
    this.#d = deps;
  }

  /** Whether a script runs for one of these accounts (the inbound threads ask before they
   *  deliver a local copy themselves). */
  async runsFor(accounts: readonly AccountId[]): Promise<boolean> {
    if (this.#d.before) return accounts.length > 0;
    for (const a of accounts) if ((await this.#d.activeScript(a)) || (await this.#vacation(a))) return true;
    return false;
  }

  /** The plan for this request, or null when no copy has a script to run (nothing changes). */
  async plan(req: FilterRequest): Promise<FilterPlan | null> {
    const scripts = await Promise.all(req.local.map((t) => this.#scriptFor(t)));
    const vacations = await Promise.all(req.local.map((t) => this.#vacation(t.account)));
    if (scripts.every((s) => s === null) && vacations.every((v) => v === null)) return null;
    let head: Buffer | null = null;
    const local: DeliveryTarget[] = [];
    const forwards: FilterForward[] = [];
    const later: (() => Promise<void>)[] = [];
    const rejects: string[] = [];
    for (const [i, t] of req.local.entries()) {
      const chain = scripts[i] ?? null;
      const vacation = vacations[i] ?? null;
      if (!chain && !vacation) {
        local.push(t);
        continue;
      }
      head ??= await readHeaderBlock(req.message.open(), LIMITS.sieveDelivery.maxHeaderBytes);
      await this.#runFor(req, t, chain ?? [], head, { local, forwards, later, rejects }, vacation);
    }
    // RFC 5429 §2.1: refuse at the protocol level when possible (no notice, no backscatter).
    if (req.refusable && rejects.length === req.local.length && local.length === 0 && forwards.length === 0) {
      return { local: [], forwards: [], after: async () => {}, refused: rejects[0] ?? 'rejected' };
    }
    return {
      refused: null,
      local: mergeTargets(local),
      forwards,
      after: async () => {
        for (const task of later) {
          try {
            await task();
          } catch (e) {
            this.#d.log.error({ msg_id: req.logId, err: errorMessage(e) }, 'sieve: action after delivery failed');
          }
        }
      },
    };
  }

  /** The JMAP vacation of the account, or null (a failure to read it is logged: no reply). */
  async #vacation(account: AccountId): Promise<VacationAction | null> {
    if (!this.#d.jmapVacation) return null;
    try {
      return await this.#d.jmapVacation(account);
    } catch (e) {
      this.#d.log.error({ account, err: errorMessage(e) }, 'sieve: JMAP vacation not read');
      return null;
    }
  }

  /** The scripts to run for this copy in order ([sieve] before, then the user's), or null. */
  async #scriptFor(t: DeliveryTarget): Promise<readonly (Script | { readonly error: string })[] | null> {
    const active = await this.#d.activeScript(t.account);
    const chain: (Script | { readonly error: string })[] = [];
    if (this.#d.before) chain.push(this.#d.before);
    if (active) chain.push(this.#compile(t.account, active.content));
    return chain.length > 0 ? chain : null;
  }

  #compile(account: AccountId, content: Buffer): Script | { readonly error: string } {
    const key = `${account}\0${createHash('sha256').update(content).digest('base64')}`;
    let s = this.#compiled.get(key);
    if (!s) {
      s = this.#d.compile(content);
      this.#compiled.set(key, s);
    }
    return s;
  }

  async #runFor(
    req: FilterRequest,
    t: DeliveryTarget,
    chain: readonly (Script | { readonly error: string })[],
    head: Buffer,
    out: { local: DeliveryTarget[]; forwards: FilterForward[]; later: (() => Promise<void>)[]; rejects: string[] },
    jmapVacation: VacationAction | null = null,
  ): Promise<void> {
    const log = this.#d.log;
    const keepBox = t.mailbox ?? 'INBOX';
    const stored = Buffer.concat([t.prefix, head]);
    const msg = this.#d.message(stored, t.prefix.length + req.message.size, async () =>
      Buffer.concat([t.prefix, await readUpTo(req.message, LIMITS.sieve.maxBodyBytes)]),
    );
    const env = { from: req.sender, to: t.account as string, auth: req.authUser ?? null };
    const ctx: SieveContext = {
      now: new Date(),
      ownAddresses: [t.account],
      duplicateSeen: (handle, id, seconds) => this.#d.duplicateSeen(t.account, handle, id, seconds),
      mailboxExists: (name) => this.#d.mailboxExists(t.account, name),
      include: (name, where) => this.#d.include(t.account, name, where),
    };
    const actions: SieveAction[] = [];
    let keep: { readonly flags: readonly string[] | null } | null = { flags: null };
    for (const script of chain) {
      if ('error' in script) {
        log.warn({ msg_id: req.logId, account: t.account, err: script.error }, 'sieve: script does not compile: kept');
        break;
      }
      let outcome: SieveOutcome;
      try {
        outcome = await this.#d.run(script, msg, env, ctx);
      } catch (e) {
        outcome = { actions: [], implicitKeep: { flags: null }, error: errorMessage(e), steps: 0 };
      }
      if (outcome.error !== null) {
        // RFC 5228 §2.10.6: a run-time error cancels the script's actions; the message is kept.
        log.warn({ msg_id: req.logId, account: t.account, err: outcome.error }, 'sieve: run-time error: kept');
        actions.length = 0;
        keep = { flags: null };
        break;
      }
      actions.push(...outcome.actions);
      keep = outcome.implicitKeep;
      // Pigeonhole's multiscript rule: the next script runs only while the implicit keep stands.
      if (keep === null) break;
    }
    const redirected = alreadyRedirectedBy(msg, t.account);
    const summary: string[] = [];
    const localBefore = out.local.length;
    for (const a of actions) {
      switch (a.kind) {
        case 'keep':
          out.local.push(withFlags({ ...t, mailbox: keepBox }, a.flags));
          summary.push(`keep ${keepBox}`);
          break;
        case 'fileinto': {
          const exists = await this.#d.mailboxExists(t.account, a.mailbox).catch(() => false);
          if (!exists && !a.create) {
            // RFC 5490 §3.2 without :create: a missing mailbox is an error; the copy is kept.
            log.warn(
              { msg_id: req.logId, account: t.account, mailbox: a.mailbox },
              'sieve: fileinto a missing mailbox: kept',
            );
            out.local.push(withFlags({ ...t, mailbox: keepBox }, a.flags));
            summary.push(`keep ${keepBox} (no ${a.mailbox})`);
          } else {
            out.local.push(withFlags({ ...t, mailbox: a.mailbox }, a.flags));
            summary.push(`fileinto ${a.mailbox}`);
          }
          break;
        }
        case 'redirect':
          if (redirected) {
            log.warn({ msg_id: req.logId, account: t.account, to: a.address }, 'sieve: redirect loop: kept');
            out.local.push({ ...t, mailbox: keepBox });
          } else {
            await this.#redirect(req, t, a.address, out);
          }
          summary.push(`redirect ${a.address}`);
          break;
        case 'reject':
          summary.push(a.ereject ? 'ereject' : 'reject');
          out.rejects.push(a.reason);
          if (req.sender !== '')
            out.later.push(() => this.#d.rejectNotice(t.account, a.reason, { head, sender: req.sender }));
          break;
        case 'discard':
          summary.push('discard');
          break;
        case 'vacation':
          summary.push('vacation');
          // Mail our spam checks sent to Junk gets no reply: its sender is most likely forged
          // (a reply would be backscatter).
          if (keepBox === 'Junk') {
            log.info({ msg_id: req.logId, account: t.account, why: 'junk' }, 'sieve: no vacation reply');
            break;
          }
          out.later.push(() =>
            this.#d.vacation(t.account, a, { sender: req.sender, msg, ownAddresses: ctx.ownAddresses }),
          );
          break;
        case 'duplicate-track':
          out.later.push(() => this.#d.duplicateTrack(t.account, a.handle, a.id, a.seconds));
          break;
      }
    }
    if (keep) {
      out.local.push(withFlags({ ...t, mailbox: keepBox }, keep.flags));
      summary.push(`keep ${keepBox}`);
    }
    // RFC 8621 §8 through RFC 5230: the JMAP vacation answers a copy the account received (kept
    // or filed, not discarded, rejected or only redirected; not Junk), unless a script of the
    // account already sent its own vacation reply for it.
    const received = out.local.slice(localBefore).filter((c) => c.account === t.account);
    if (
      jmapVacation &&
      received.length > 0 &&
      !received.some((c) => (c.mailbox ?? 'INBOX') === 'Junk') &&
      !actions.some((a) => a.kind === 'vacation')
    ) {
      summary.push('vacation (JMAP)');
      out.later.push(() =>
        this.#d.vacation(t.account, jmapVacation, { sender: req.sender, msg, ownAddresses: ctx.ownAddresses }),
      );
    }
    log.info({ msg_id: req.logId, account: t.account, actions: summary }, 'sieve');
  }

  async #redirect(
    req: FilterRequest,
    t: DeliveryTarget,
    address: string,
    out: { local: DeliveryTarget[]; forwards: FilterForward[] },
  ): Promise<void> {
    const to = await this.#d.resolve(address);
    const mark = `${REDIRECTED}: <${t.account}>\r\n`;
    if (to === null) {
      // Nobody to give it to (no such local user): the copy is kept, never lost.
      this.#d.log.warn(
        { msg_id: req.logId, account: t.account, to: address },
        'sieve: redirect to an unknown local address: kept',
      );
      out.local.push({ ...t, mailbox: t.mailbox ?? 'INBOX' });
      return;
    }
    for (const account of to.accounts) {
      const received = receivedOf(t.prefix);
      out.local.push({
        account,
        prefix: Buffer.concat([
          Buffer.from(mark),
          traceHeaders({ returnPath: req.sender, deliveredTo: account, received }),
        ]),
      });
    }
    if (to.remote.length > 0) {
      const via = t.account.slice(t.account.lastIndexOf('@') + 1);
      out.forwards.push({
        sender: await this.#d.forwardSender(req.sender, via),
        via,
        recipients: to.remote.map((address) => ({ address })),
        // The copy leaves with our marker and our trace fields, without Return-Path (RFC 5321
        // §4.4: only the final delivery adds it) and without the recipient's Delivered-To.
        prefix: Buffer.concat([Buffer.from(mark), Buffer.from(receivedOf(t.prefix))]),
      });
    }
  }
}

/** The Received: field (and what follows it) of a copy's prefix. */
function receivedOf(prefix: Buffer): string {
  const text = prefix.toString('utf8');
  const at = text.search(/^Received:/m);
  return at >= 0 ? text.slice(at) : '';
}

function withFlags(t: DeliveryTarget, flags: readonly string[] | null): DeliveryTarget {
  return flags && flags.length > 0 ? { ...t, flags } : t;
}

/** One copy per (account, mailbox): RFC 5228 §2.10.3 (keep and fileinto of one mailbox are one
 *  action), flags united. */
function mergeTargets(targets: readonly DeliveryTarget[]): DeliveryTarget[] {
  const byKey = new Map<string, DeliveryTarget>();
  for (const t of targets) {
    const key = `${t.account}\0${(t.mailbox ?? 'INBOX').toUpperCase() === 'INBOX' ? 'INBOX' : t.mailbox}`;
    const prev = byKey.get(key);
    if (!prev) {
      byKey.set(key, t);
      continue;
    }
    const flags = [...new Set([...(prev.flags ?? []), ...(t.flags ?? [])])];
    byKey.set(key, flags.length > 0 ? { ...prev, flags } : prev);
  }
  return [...byKey.values()];
}

/** True when the message already carries our redirect marker for this account (a loop). */
function alreadyRedirectedBy(msg: SieveMessage, account: AccountId): boolean {
  const mark = `<${account.toLowerCase()}>`;
  return msg.headers.some(
    (h) => h.name.toLowerCase() === REDIRECTED.toLowerCase() && h.value.trim().toLowerCase() === mark,
  );
}

/** The message's first `max` bytes (the interpreter's `body` test reads no further,
 *  LIMITS.sieve.maxBodyBytes: docs/sieve.md limits). */
async function readUpTo(msg: SpooledMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const stream = msg.open();
  try {
    for await (const c of stream as AsyncIterable<Buffer>) {
      chunks.push(c);
      size += c.length;
      if (size >= max) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, max);
}
