// `arcline check`: gather, evaluate, and the two outputs. The JSON shape is a public contract
// (docs/cli.md "arcline check"): `version` changes when a field changes meaning or goes away.

import { LIMITS } from '../core/limits.ts';
import { evaluateDomain, evaluateServer, exitStatus } from './evaluate.ts';
import type { CheckResult, Status } from './facts.ts';
import { type GatherDeps, gatherDomain, gatherServer } from './gather.ts';

export interface CheckReport {
  readonly version: 1;
  readonly hostname: string;
  /** Our sending addresses as checked. */
  readonly addresses: readonly string[];
  readonly domains: readonly string[];
  /** The worst status of all checks. */
  readonly status: Status;
  /** The process exit status: 0 all pass, 3 warnings only, 1 any failure. */
  readonly exit: number;
  readonly checks: readonly CheckResult[];
}

export async function runChecks(deps: GatherDeps, domains: readonly string[], now = new Date()): Promise<CheckReport> {
  const server = await gatherServer(deps);
  // A few domains at a time: each asks a dozen DNS questions and fetches its MTA-STS policy.
  const facts: Awaited<ReturnType<typeof gatherDomain>>[] = new Array(domains.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < domains.length; i = next++) {
      facts[i] = await gatherDomain(deps, domains[i] as string, server.addresses);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LIMITS.check.concurrentDomains, domains.length) }, worker));
  const checks = [...evaluateServer(server, now), ...facts.flatMap((f) => evaluateDomain(f, now))];
  const exit = exitStatus(checks);
  return {
    version: 1,
    hostname: deps.config.hostname,
    addresses: server.addresses,
    domains,
    status: exit === 1 ? 'fail' : exit === 3 ? 'warn' : 'pass',
    exit,
    checks,
  };
}

const MARK: Record<Status, string> = { pass: '✓', warn: '!', fail: '✗' };

/** One line per check, "✓/!/✗ check  message", the fixes indented below; grouped by domain. */
export function formatReport(r: CheckReport): string[] {
  const out: string[] = [];
  let scope: string | null | undefined;
  for (const c of r.checks) {
    if (c.domain !== scope) {
      if (scope !== undefined) out.push('');
      out.push(c.domain === null ? `server ${r.hostname} (${r.addresses.join(', ') || 'no addresses'})` : c.domain);
      scope = c.domain;
    }
    out.push(`  ${MARK[c.status]} ${c.check.padEnd(9)} ${c.message}`);
    for (const f of c.fix) out.push(`      fix: ${f}`);
  }
  const n = (s: Status) => r.checks.filter((c) => c.status === s).length;
  out.push('', `${n('pass')} passed, ${n('warn')} warning(s), ${n('fail')} failed`);
  return out;
}
