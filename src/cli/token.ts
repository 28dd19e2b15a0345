// `arcline token add --role ROLE [--name N] | list | del ID`: API tokens of the admin HTTP API
// (admin/access.ts). The token is printed once; only its hash is kept. Each change is audited
// with the actor "cli".

import { checkRoleTarget, formatRole, parseRole } from '../admin/access.ts';
import { ArclineError } from '../core/errors.ts';
import type { Context } from '../main.ts';

export async function tokenCommand(
  ctx: Context,
  sub: string | undefined,
  args: readonly string[],
  flags: { role?: string | undefined; name?: string | undefined },
  say: (line: string) => void,
  usage: (message: string) => Error,
): Promise<void> {
  const audit = (action: string, target: string) =>
    ctx.access.audit({ actor: 'cli', role: 'admin', from: 'local', action, target, result: 'ok' });
  if (sub !== 'list' && sub !== 'add' && sub !== 'del') throw usage('token: add, list or del');
  if (sub === 'add') {
    if (args.length > 0) throw usage(`token add: unexpected argument ${args[0]}`);
    if (flags.role === undefined) throw usage('token add: --role admin|readonly|domain:D|user:ADDR expected');
    const role = parseRole(flags.role);
    await checkRoleTarget(role, ctx.ops);
    const t = await ctx.access.create({ role, ...(flags.name !== undefined ? { name: flags.name } : {}) });
    await audit('token add', `${t.id} ${formatRole(role)}`);
    say(t.token);
    return;
  }
  if (flags.role !== undefined || flags.name !== undefined) throw usage(`token ${sub}: no options`);
  if (sub === 'list') {
    if (args.length > 0) throw usage(`token list: unexpected argument ${args[0]}`);
    for (const t of await ctx.access.list()) {
      const used = t.lastUsed ? t.lastUsed.toISOString() : 'never';
      say(`${t.id}  ${formatRole(t.role)}  ${t.name || '-'}  created ${t.created.toISOString()}  used ${used}`);
    }
    return;
  }
  if (args.length !== 1) throw usage('token del: ID expected');
  const id = args[0] as string;
  if (!(await ctx.access.delete(id))) throw new ArclineError('NOT_FOUND', `no token ${id}`);
  await audit('token del', id);
  say(`deleted token ${id}`);
}
