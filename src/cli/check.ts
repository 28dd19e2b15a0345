// `arcline check [DOMAIN...] [--json]`: the deliverability self-check (check/, docs/cli.md).
// Without a domain, every local domain. Exit status: 0 every check passed, 3 warnings only,
// 1 at least one failure, 2 usage.

import { formatReport, runChecks } from '../check/report.ts';
import type { Config } from '../config/schema.ts';
import { normalizeDomain } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import { createPromiseResolver } from '../dns/resolver.ts';
import type { Context } from '../main.ts';

export async function checkCommand(
  ctx: Context,
  config: Config,
  args: readonly string[],
  flags: { json?: boolean | undefined },
  say: (line: string) => void,
): Promise<number> {
  const domains: string[] = [];
  for (const a of args) {
    const d = normalizeDomain(a);
    if (!d) throw new ArclineError('INVALID', `invalid domain name: ${JSON.stringify(a)}`);
    if (!(await ctx.directory.isLocalDomain(d))) throw new ArclineError('NOT_FOUND', `no domain ${d}`);
    domains.push(d);
  }
  if (args.length === 0) for (const d of await ctx.ops.listDomains()) domains.push(d.name);
  const resolver = createPromiseResolver(config.dns.servers, LIMITS.check.dnsTimeoutMs);
  const report = await runChecks({ config, resolver, dkim: ctx.dkim }, domains);
  if (flags.json) say(JSON.stringify(report, null, 2));
  else for (const l of formatReport(report)) say(l);
  return report.exit;
}
