// `arcline sieve check FILE`: parse and validate a Sieve script (docs/sieve.md). Prints "ok"
// or one line per error with its line number; exit 0 valid, 1 invalid, 2 usage.

import { readFileSync, statSync } from 'node:fs';
import { LIMITS } from '../core/limits.ts';
import { formatError } from '../sieve/ast.ts';
import { checkScript } from '../sieve/validate.ts';

export function sieveCommand(
  args: readonly string[],
  out: (line: string) => void,
  err: (line: string) => void,
): number {
  const [sub, file, ...extra] = args;
  if (sub !== 'check' || file === undefined || extra.length > 0) {
    err('arcline: usage: arcline sieve check FILE');
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
