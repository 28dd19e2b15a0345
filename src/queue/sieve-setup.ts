// Builds the Sieve filter of delivery (queue/sieve-filter.ts) from the configuration and the
// stores: the composition of docs/sieve.md "Sieve at delivery". The [sieve] before script is
// read and checked here, at start: a broken one stops the server with its errors.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.ts';
import { formatAddress, parseAddress } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { type Directory, principalOf } from '../directory/types.ts';
import type { JmapState } from '../jmapstate/types.ts';
import { readVacation, vacationAction, vacationActive } from '../jmapstate/vacation.ts';
import type { Script } from '../sieve/ast.ts';
import { formatError } from '../sieve/ast.ts';
import { runSieve, sieveMessage } from '../sieve/interpret/run.ts';
import type { SieveScripts, SieveState } from '../sieve/store-types.ts';
import { checkScript } from '../sieve/validate.ts';
import type { MailboxLookup } from '../store/types.ts';
import type { Dispatcher } from './dispatch.ts';
import { sendRejectNotice, sendVacation } from './sieve-actions.ts';
import { SieveFilter } from './sieve-filter.ts';

/** A global include name: one plain file name (RFC 6609 §3.1 leaves names to the server). */
const GLOBAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function compile(source: Uint8Array): Script | { readonly error: string } {
  const r = checkScript(source);
  if (r.ok && r.script) return r.script;
  return { error: r.errors.map(formatError).join('; ') || 'does not compile' };
}

export async function createSieveFilter(deps: {
  readonly config: Config;
  readonly scripts: SieveScripts & SieveState;
  readonly store: MailboxLookup;
  readonly directory: Directory;
  readonly dispatcher: Dispatcher;
  readonly sign: ((domain: string, message: Readable) => Promise<string>) | null;
  readonly log: Logger;
  /** The JMAP objects: an enabled VacationResponse is answered here too (RFC 8621 §8). */
  readonly jmap?: JmapState;
}): Promise<SieveFilter | null> {
  const { config, scripts, log } = deps;
  if (!config.sieve.enabled) return null;
  let before: Script | null = null;
  if (config.sieve.before !== '') {
    const c = compile(await readFile(config.sieve.before));
    if ('error' in c) throw new ArclineError('INVALID', `[sieve] before ${config.sieve.before}: ${c.error}`);
    before = c;
  }
  const globalDir = config.sieve.global_dir;
  const now = () => new Date();
  const send = {
    hostname: config.hostname,
    notice: (to: string, message: Buffer, logId: string) => deps.dispatcher.notice(to, message, logId),
    sign: deps.sign,
    log,
  };
  const seconds = (ms: number) => Math.floor(ms / 1000);
  return new SieveFilter({
    activeScript: (account) => scripts.active(account),
    before,
    compile,
    run: runSieve,
    message: sieveMessage,
    mailboxExists: (account, name) => deps.store.mailboxExists(account, name),
    include: async (account, name, where) => {
      let source: Buffer | null = null;
      if (where === 'personal') source = await scripts.get(account, name);
      else if (globalDir !== '' && GLOBAL_NAME.test(name)) {
        source = await readFile(join(globalDir, `${name}.sieve`)).catch(() => null);
      }
      if (source === null || source.length > LIMITS.sieve.maxScriptBytes) return null;
      const c = compile(source);
      if ('error' in c) {
        log.warn({ account, script: name, where, err: c.error }, 'sieve: included script does not compile');
        return null;
      }
      return c;
    },
    duplicateSeen: (account, handle, id, s) => scripts.duplicateSeen(account, handle, id, s, now()),
    duplicateTrack: (account, handle, id, s) => scripts.duplicateTrack(account, handle, id, s, now()),
    resolve: async (address) => {
      const a = parseAddress(address);
      if (!a) return null;
      const r = await deps.directory.resolveRecipient(a);
      if (r.kind === 'unknown-user') return null;
      if (r.kind === 'unknown-domain') return { accounts: [], remote: [formatAddress(a)] };
      return { accounts: r.accounts, remote: r.remote.map(formatAddress) };
    },
    forwardSender: (sender, via) => deps.dispatcher.senderRewriter.forwardSender(sender, via),
    vacation: (account, action, original) =>
      sendVacation(
        {
          ...send,
          recent: (a: AccountId, handle, sender, s) => scripts.vacationRecent(a, handle, sender, s, now()),
          record: (a: AccountId, handle, sender, s) => scripts.vacationRecord(a, handle, sender, s, now()),
          maySendAs: async (a: AccountId, address: string) => {
            const parsed = parseAddress(address);
            return parsed !== null && (await deps.directory.maySendAs(principalOf(a), parsed));
          },
          minSeconds: seconds(config.sieve.vacation_min_period),
          maxSeconds: seconds(config.sieve.vacation_max_period),
        },
        account,
        action,
        original,
      ),
    ...(deps.jmap ? { jmapVacation: jmapVacation(deps.jmap, seconds(config.sieve.vacation_min_period)) } : {}),
    rejectNotice: (account, reason, original) => sendRejectNotice(send, account, reason, original),
    log,
  });
}

/** The account's VacationResponse as a vacation action when it applies now, else null. */
function jmapVacation(state: JmapState, seconds: number) {
  return async (account: AccountId) => {
    const v = await readVacation(state, account);
    return vacationActive(v, new Date()) ? vacationAction(v, seconds) : null;
  };
}
