// `arcline ip allow|deny|del|list|check` and `arcline ban list|del`: the IP allow and deny lists
// and the automatic bans (admin/networks.ts, docs/spam.md). A running server applies a change
// within a second. Each change is audited with the actor "cli".

import { deleteNetwork, explain, liftBan, putNetwork } from '../admin/networks.ts';
import type { Context } from '../main.ts';
import { table } from './output.ts';

type Say = (line: string) => void;

export async function ipCommand(
  ctx: Context,
  sub: string | undefined,
  args: readonly string[],
  flags: { comment?: string | undefined },
  say: Say,
  usage: (message: string) => Error,
): Promise<void> {
  const audit = (action: string, target: string) =>
    ctx.access.audit({ actor: 'cli', role: 'admin', from: 'local', action, target, result: 'ok' });
  const one = (what: string): string => {
    if (args.length !== 1) throw usage(`ip ${sub}: ${what} expected`);
    return args[0] as string;
  };
  if (sub !== 'allow' && sub !== 'deny' && flags.comment !== undefined) throw usage(`ip ${sub}: no --comment`);
  switch (sub) {
    case 'allow':
    case 'deny': {
      const { entry, changed } = await putNetwork(ctx.defense, one('ADDRESS or NETWORK'), sub, {
        ...(flags.comment !== undefined ? { comment: flags.comment } : {}),
        by: 'cli',
      });
      if (changed) audit(`ip ${sub}`, entry.cidr);
      say(changed ? `${entry.cidr} is on the ${sub} list` : `${entry.cidr} was already on the ${sub} list`);
      return;
    }
    case 'del': {
      const text = one('ADDRESS or NETWORK');
      await deleteNetwork(ctx.defense, text);
      audit('ip del', text);
      say(`removed ${text}`);
      return;
    }
    case 'list': {
      if (args.length > 0) throw usage(`ip list: unexpected argument ${args[0]}`);
      const rows = (await ctx.defense.networks()).map((e) => [
        e.list,
        e.cidr,
        new Date(e.created).toISOString(),
        e.createdBy || '-',
        e.comment || '-',
      ]);
      table(['LIST', 'NETWORK', 'ADDED', 'BY', 'COMMENT'], rows, say);
      return;
    }
    case 'check': {
      const x = await explain(ctx.defense, one('ADDRESS'));
      say(`${x.ip}: ${x.verdict}`);
      for (const e of x.entries) say(`  on the ${e.list} list as ${e.cidr}${e.comment ? ` (${e.comment})` : ''}`);
      if (x.ban) say(`  ${banLine(x.ban)}`);
      if (x.ban && x.verdict === 'allow') say('  (the allow list wins over the ban)');
      return;
    }
    default:
      throw usage('ip: allow, deny, del, list or check');
  }
}

export async function banCommand(
  ctx: Context,
  sub: string | undefined,
  args: readonly string[],
  say: Say,
  usage: (message: string) => Error,
): Promise<void> {
  if (sub === 'list') {
    if (args.length > 0) throw usage(`ban list: unexpected argument ${args[0]}`);
    const bans = await ctx.defense.bans();
    for (const b of bans) say(banLine(b));
    if (bans.length === 0) say('no bans in force');
    return;
  }
  if (sub === 'del') {
    if (args.length !== 1) throw usage('ban del: ADDRESS expected');
    const text = args[0] as string;
    await liftBan(ctx.defense, text);
    ctx.access.audit({ actor: 'cli', role: 'admin', from: 'local', action: 'ban del', target: text, result: 'ok' });
    say(`lifted the ban of ${text}`);
    return;
  }
  throw usage('ban: list or del');
}

function banLine(b: { network: string; offence: string; detail: string; expires: number; level: number }): string {
  return `${b.network} banned until ${new Date(b.expires).toISOString()} for ${b.offence} (${b.detail}; ban number ${b.level})`;
}
