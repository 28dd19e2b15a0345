// `arcline sieve ...` (docs/sieve.md, docs/cli.md):
//   check FILE                 parse and validate; "ok" or one line per error with its line number
//                              (pure and config-free); exit 0 valid, 1 invalid, 2 usage
//   put USER NAME FILE|-       validate, then store (byte for byte); refused with the errors
//   get USER NAME              the script's exact bytes on stdout
//   list USER                  one line per script, the active one marked
//   activate USER NAME | deactivate USER | delete USER NAME
// The stored scripts are reached through SieveScripts (sieve/store-types.ts), as ManageSieve
// reaches them; the quotas of [sieve] apply alike.

import { readFileSync, statSync } from 'node:fs';
import { ArclineError } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Context } from '../main.ts';
import { formatError } from '../sieve/ast.ts';
import { isSieveStoreError } from '../sieve/store-types.ts';
import { checkScript } from '../sieve/validate.ts';

export function sieveCommand(
  args: readonly string[],
  out: (line: string) => void,
  err: (line: string) => void,
): number {
  const [sub, file, ...extra] = args;
  if (sub !== 'check' || file === undefined || extra.length > 0) {
    err('arcline: usage: arcline sieve check FILE | put USER NAME FILE|- | get USER NAME | list USER');
    err('       | activate USER NAME | deactivate USER | delete USER NAME');
    return 2;
  }
  let bytes: Uint8Array;
  try {
    if (statSync(file).size > LIMITS.sieve.maxScriptBytes) {
      err(`${file}: line 1: error: script too large (over ${LIMITS.sieve.maxScriptBytes} bytes)`);
      return 1;
    }
    bytes = readFileSync(file);
  } catch (e) {
    err(`arcline: ${file}: ${(e as Error).message}`);
    return 2;
  }
  const result = checkScript(bytes);
  if (result.ok) {
    out('ok');
    return 0;
  }
  for (const e of result.errors) out(`${file}: ${formatError(e)}`);
  return 1;
}

const USAGE: Record<string, [number, string]> = {
  put: [3, 'sieve put USER NAME FILE|-'],
  get: [2, 'sieve get USER NAME'],
  list: [1, 'sieve list USER'],
  activate: [2, 'sieve activate USER NAME'],
  deactivate: [1, 'sieve deactivate USER'],
  delete: [2, 'sieve delete USER NAME'],
};

/** The script's bytes from a file or standard input ("-"), read up to one octet past the
 *  largest script (so an oversized one is refused without reading it all). */
function readScript(path: string, max: number): Buffer {
  const fd = path === '-' ? 0 : path;
  const bytes = readFileSync(fd);
  if (bytes.length > max)
    throw new ArclineError('LIMIT', `${path}: script over ${max} octets ([sieve] max_script_size)`);
  return bytes;
}

/** The stored-script subcommands; usage errors through `usage`, the rest as ArclineError
 *  (exit 1). Returns the exit code. */
export async function sieveStoreCommand(
  ctx: Context,
  sub: string | undefined,
  args: readonly string[],
  io: { say: (line: string) => void; err: (line: string) => void; write: (bytes: Buffer) => void },
  usage: (message: string) => Error,
): Promise<number> {
  const spec = sub === undefined ? undefined : USAGE[sub];
  if (!spec) throw usage('sieve: check, put, get, list, activate, deactivate or delete');
  if (args.length !== spec[0]) throw usage(`usage: arcline ${spec[1]}`);
  const [address, name, file] = args as [string, string, string];
  const user = await ctx.ops.getUser(address);
  if (!user) throw new ArclineError('NOT_FOUND', `no such user: ${address}`);
  const account = user.accountId as AccountId;
  const scripts = ctx.sieve;
  try {
    switch (sub) {
      case 'put': {
        const bytes = readScript(file, scripts.quota.maxScriptBytes || LIMITS.sieve.maxScriptBytes);
        const result = checkScript(bytes);
        if (!result.ok) {
          for (const e of result.errors) io.err(`${file === '-' ? '<stdin>' : file}: ${formatError(e)}`);
          io.err(`arcline: ${name}: not stored: the script has errors`);
          return 1;
        }
        await scripts.put(account, name, bytes);
        io.say(`stored ${name} (${bytes.length} octets) for ${user.address}`);
        return 0;
      }
      case 'get': {
        const bytes = await scripts.get(account, name);
        if (bytes === null) throw new ArclineError('NOT_FOUND', `${user.address} has no script ${name}`);
        io.write(bytes);
        return 0;
      }
      case 'list': {
        for (const s of await scripts.list(account)) {
          io.say(`${s.active ? '*' : ' '} ${s.name}  ${s.size}${s.active ? '  (active)' : ''}`);
        }
        return 0;
      }
      case 'activate':
        await scripts.setActive(account, name);
        io.say(`${name} is the active script of ${user.address}`);
        return 0;
      case 'deactivate':
        await scripts.setActive(account, null);
        io.say(`no active script for ${user.address}`);
        return 0;
      default:
        await scripts.delete(account, name);
        io.say(`deleted ${name} of ${user.address}`);
        return 0;
    }
  } catch (e) {
    if (!isSieveStoreError(e)) throw e;
    const hint = e.code === 'ACTIVE' ? ` (arcline sieve deactivate ${address} first)` : '';
    throw new ArclineError(e.code === 'NONEXISTENT' ? 'NOT_FOUND' : 'INVALID', `${name}: ${e.message}${hint}`);
  }
}
