// `arcline greylist list | clear` (docs/spam.md "Greylisting"): the triplets in
// {state}/greylist.db, most recently seen first, or forget them all (every client is greylisted
// afresh). Works while the server runs (SQLite WAL, as the server's own connections).

import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { createGreylister } from '../defense/greylist.ts';

const LIST_LIMIT = 1000;

export async function greylistCommand(
  config: Config,
  log: Logger,
  sub: string | undefined,
  args: readonly string[],
  say: (line: string) => void,
  usage: (message: string) => Error,
): Promise<void> {
  if (sub !== 'list' && sub !== 'clear') throw usage('greylist: list or clear');
  if (args.length > 0) throw usage(`greylist ${sub}: unexpected argument ${args[0]}`);
  const g = createGreylister(config, { log, trusted: () => false });
  try {
    if (sub === 'clear') {
      say(`forgot ${await g.clear()} greylist entries`);
      return;
    }
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
    const rows = (await g.list(LIST_LIMIT)).map((e) => [
      e.net,
      e.sender || '<>',
      e.recipient,
      iso(e.first),
      iso(e.last),
      e.passed ? 'passed' : 'waiting',
    ]);
    const header = ['NETWORK', 'SENDER', 'RECIPIENT', 'FIRST', 'LAST', 'STATE'];
    const all = [header, ...rows];
    const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
    for (const r of all) say(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '));
  } finally {
    await g.close();
  }
}
