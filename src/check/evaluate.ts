// `arcline check`: the verdicts, pure, from the facts gather.ts collected. Every failure says
// what to publish or change; the zone lines are those of `arcline dns-records`
// (hygiene/dns-records.ts), picked by parsing them back (dns/published.ts parseZoneLine).
// Severity (docs/spam.md "Deliverability self-check"): fail = receivers will refuse, junk or
// not find our mail (or a record is wrong); warn = works, but weaker than it should be
// (DMARC p=none, no TLS-RPT, no MTA-STS, a certificate not from a trusted CA, a PTR name that
// is not the host name).

import { parseZoneLine, type WantedRecord } from '../dns/published.ts';
import { reverseName } from '../dns/reverse.ts';
import type { CertFacts, CheckResult, DomainFacts, Lookup, ServerFacts, Status } from './facts.ts';

const lc = (s: string) => s.toLowerCase().replace(/\.$/, '');

function result(domain: string | null, check: string, status: Status, message: string, fix: string[] = []) {
  return { domain, check, status, message, fix } satisfies CheckResult;
}

/** The zone line of `records` that `pick` selects, as the fix. */
function line(records: readonly string[], pick: (r: WantedRecord) => boolean): string[] {
  const l = records.find((x) => {
    const r = parseZoneLine(x);
    return r !== null && pick(r);
  });
  return l === undefined ? [] : [l];
}

function lookupError(l: Lookup<unknown>): string | null {
  return !l.ok && !l.absent ? l.error : null;
}

/** RFC 6125 §6.4.3: a wildcard only as the whole left-most label, matching one label. */
export function nameCovered(name: string, covered: readonly string[]): boolean {
  const n = lc(name);
  return covered.some((c) => {
    const p = lc(c);
    if (p === n) return true;
    if (!p.startsWith('*.')) return false;
    const dot = n.indexOf('.');
    return dot > 0 && n.slice(dot + 1) === p.slice(2);
  });
}

/** Tag-value list (DKIM RFC 6376 §3.2, DMARC RFC 7489 §6.4): "k=v; k=v", names in lower case. */
export function tags(record: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of record.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    m.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return m;
}

// ---- the server ----------------------------------------------------------------------------

export function evaluateServer(f: ServerFacts, now: Date): CheckResult[] {
  const out: CheckResult[] = [];
  const h = f.hostname;
  if (f.addresses.length === 0) {
    out.push(
      result(
        null,
        'addresses',
        'fail',
        f.addressError
          ? `cannot look up the addresses of ${h}: ${f.addressError}`
          : `${h} has no A or AAAA record, so our sending addresses are unknown`,
        [`${h}. 3600 IN A <the server's IPv4 address>`, 'or set [server] public_addresses'],
      ),
    );
  } else {
    for (const a of f.addresses) {
      // The host name is the MX target and the EHLO name: it must lead to our addresses.
      if (f.hostAddresses.includes(a)) {
        out.push(result(null, 'addresses', 'pass', `${h} resolves to ${a}`));
      } else {
        out.push(
          result(null, 'addresses', 'fail', `${h} does not resolve to our address ${a}`, [
            `${h}. 3600 IN ${a.includes(':') ? 'AAAA' : 'A'} ${a}`,
          ]),
        );
      }
    }
  }
  for (const a of f.perAddress) out.push(fcrdns(a.address, a, h), ...dnsbl(a.address, a.dnsbl));
  for (const t of f.tls) out.push(tlsResult(t.service, t.listen, t.result, h, now));
  return out;
}

function fcrdns(address: string, a: ServerFacts['perAddress'][number], hostname: string): CheckResult {
  const ptrLine = `${reverseName(address)}. 3600 IN PTR ${hostname}.`;
  const fix = [ptrLine, '(the PTR record is set by whoever owns the address: ask your provider)'];
  if (!a.ptr.ok) {
    const err = lookupError(a.ptr);
    return result(
      null,
      'fcrdns',
      'fail',
      err ? `reverse DNS of ${address}: look-up failed (${err})` : `${address} has no PTR record (reverse DNS)`,
      fix,
    );
  }
  // Forward-confirmed reverse DNS: a PTR name whose A/AAAA include the address.
  const confirmed = a.forward.filter((x) => x.addresses.includes(address)).map((x) => lc(x.name));
  if (confirmed.length === 0) {
    return result(
      null,
      'fcrdns',
      'fail',
      `PTR of ${address} is ${a.ptr.value.join(', ')}, which does not resolve back to ${address}`,
      fix,
    );
  }
  if (!confirmed.includes(lc(hostname))) {
    return result(
      null,
      'fcrdns',
      'warn',
      `${address} reverses to ${confirmed.join(', ')} and back, but not to ${hostname}, our EHLO name`,
      fix,
    );
  }
  return result(null, 'fcrdns', 'pass', `${address} reverses to ${hostname} and back (forward-confirmed)`);
}

function dnsbl(address: string, zones: ServerFacts['perAddress'][number]['dnsbl']): CheckResult[] {
  const out: CheckResult[] = [];
  const clear: string[] = [];
  for (const z of zones) {
    const r = z.result;
    if (r.kind === 'clear') clear.push(z.zone);
    else if (r.kind === 'error') {
      out.push(result(null, 'dnsbl', 'warn', `${address}: blocklist ${z.zone} did not answer (${r.error})`));
    } else {
      out.push(
        result(
          null,
          'dnsbl',
          'fail',
          `${address} is listed on ${z.zone} (${r.codes.join(', ')})${r.reason ? `: ${r.reason}` : ''}`,
          [
            `find the cause (an open relay, a leaked password, a compromised account), then ask ${z.zone} for delisting`,
          ],
        ),
      );
    }
  }
  if (clear.length > 0) out.unshift(result(null, 'dnsbl', 'pass', `${address} is not listed on ${clear.join(', ')}`));
  return out;
}

/** A certificate for `name`: dates, names, chain. */
function certVerdict(c: CertFacts, name: string, now: Date): { status: Status; problem: string | null } {
  const until = c.notAfter.toISOString().slice(0, 10);
  if (now.getTime() > c.notAfter.getTime()) return { status: 'fail', problem: `expired on ${until}` };
  if (now.getTime() < c.notBefore.getTime()) {
    return { status: 'fail', problem: `not valid before ${c.notBefore.toISOString().slice(0, 10)}` };
  }
  if (!nameCovered(name, c.names)) {
    return { status: 'fail', problem: `is for ${c.names.join(', ') || '(no names)'}, not ${name}` };
  }
  if (!c.trusted) return { status: 'warn', problem: `is not from a trusted CA (${c.trustError ?? 'unverified'})` };
  return { status: 'pass', problem: null };
}

function tlsResult(
  service: string,
  listen: string,
  r: ServerFacts['tls'][number]['result'],
  hostname: string,
  now: Date,
): CheckResult {
  const what = `${service} ${listen}`;
  if (!r.ok) return result(null, 'tls', 'fail', `${what}: no TLS: ${r.error}`, ['is the server running?']);
  const v = certVerdict(r.cert, hostname, now);
  const fix =
    v.status === 'pass'
      ? []
      : [`a certificate for ${hostname} from a public CA: [acme] directory_url, or [tls] cert/key (docs/acme.md)`];
  const until = r.cert.notAfter.toISOString().slice(0, 10);
  return result(
    null,
    'tls',
    v.status,
    v.problem
      ? `${what}: the certificate ${v.problem}`
      : `${what}: certificate for ${r.cert.names.join(', ')} valid until ${until}`,
    fix,
  );
}

// ---- a domain ------------------------------------------------------------------------------

export function evaluateDomain(f: DomainFacts, now: Date): CheckResult[] {
  return [mx(f), ...spf(f), ...dkim(f), dmarc(f), mtaSts(f, now), tlsRpt(f)];
}

function mx(f: DomainFacts): CheckResult {
  const d = f.domain;
  const fix = line(f.records, (r) => r.type === 'MX');
  if (!f.mx.ok) {
    const err = lookupError(f.mx);
    return result(d, 'mx', 'fail', err ? `MX look-up failed (${err})` : `${d} has no MX record`, fix);
  }
  const hosts = f.mx.value.map((m) => lc(m.exchange));
  // RFC 7505: a null MX ("0 .") says the domain accepts no mail.
  if (hosts.every((x) => x === '')) return result(d, 'mx', 'fail', `${d} has a null MX: it accepts no mail`, fix);
  const ours = hosts.filter((x) => nameCovered(x, f.ourMx));
  const others = hosts.filter((x) => x !== '' && !nameCovered(x, f.ourMx));
  if (ours.length === 0) return result(d, 'mx', 'fail', `MX points at ${others.join(', ')}, not at this server`, fix);
  if (others.length > 0) {
    return result(
      d,
      'mx',
      'warn',
      `MX points at ${ours.join(', ')} and also at ${others.join(', ')}, which is not this server`,
      ['a backup MX? add it to [mta_sts] mx, else remove its MX record'],
    );
  }
  return result(d, 'mx', 'pass', `MX points at ${ours.join(', ')}`);
}

const isSpf = (t: string) => {
  const l = t.toLowerCase();
  return l === 'v=spf1' || l.startsWith('v=spf1 ');
};

function spf(f: DomainFacts): CheckResult[] {
  const d = f.domain;
  const fix = line(f.records, (r) => r.type === 'TXT' && r.value.startsWith('v=spf1'));
  if (!f.txt.ok && !f.txt.absent) return [result(d, 'spf', 'fail', `TXT look-up failed (${f.txt.error})`)];
  const records = f.txt.ok ? f.txt.value.filter(isSpf) : [];
  if (records.length === 0) return [result(d, 'spf', 'fail', `${d} publishes no SPF record`, fix)];
  // RFC 7208 §4.5: more than one record is a permerror.
  if (records.length > 1) {
    return [result(d, 'spf', 'fail', `${d} publishes ${records.length} SPF records; receivers use none`, fix)];
  }
  const record = records[0] as string;
  const out: CheckResult[] = [];
  // RFC 7208 §5.1: "all" without qualifier (or "+all") matches every host.
  const terms = record.toLowerCase().split(' ').filter(Boolean);
  if (terms.includes('all') || terms.includes('+all')) {
    out.push(result(d, 'spf', 'fail', `SPF "${record}" authorises every host on the internet (+all)`, fix));
  } else if (terms.includes('?all')) {
    out.push(result(d, 'spf', 'warn', `SPF "${record}" ends in ?all: forged mail is neutral, not failed`, fix));
  }
  for (const s of f.spf) {
    if (s.result === 'pass') {
      out.push(result(d, 'spf', 'pass', `SPF authorises ${s.address}`));
      continue;
    }
    const why = s.comment ? ` (${s.comment})` : '';
    const extra = `or add ip${s.address.includes(':') ? '6' : '4'}:${s.address} to "${record}"`;
    out.push(result(d, 'spf', 'fail', `SPF gives ${s.result} for our address ${s.address}${why}`, [...fix, extra]));
  }
  return out;
}

function dkim(f: DomainFacts): CheckResult[] {
  const d = f.domain;
  if (!f.dkimSign) return [result(d, 'dkim', 'warn', 'DKIM signing is off ([dkim] sign = false)')];
  if (f.dkim.length === 0) {
    return [
      result(d, 'dkim', 'fail', `${d} has no DKIM key, so its mail goes out unsigned`, [`arcline dkim keygen ${d}`]),
    ];
  }
  return f.dkim.map((k) => {
    const name = `${k.selector}._domainkey.${d}`;
    const fail: Status = k.pending ? 'warn' : 'fail';
    const pending = k.pending ? ' (pending key: publish it before `arcline dkim activate`)' : '';
    if (!k.found.ok) {
      const err = lookupError(k.found);
      return result(
        d,
        'dkim',
        fail,
        err ? `${name}: look-up failed (${err})` : `DKIM key ${k.selector} is not published at ${name}${pending}`,
        [k.zoneLine],
      );
    }
    const want = tags(k.expected);
    const wantP = (want.get('p') ?? '').replace(/\s/g, '');
    const wantK = (want.get('k') ?? 'rsa').toLowerCase();
    const keys = k.found.value.map(tags).filter((t) => t.has('p'));
    const match = keys.some(
      (t) => (t.get('p') ?? '').replace(/\s/g, '') === wantP && (t.get('k') ?? 'rsa').toLowerCase() === wantK,
    );
    if (match) return result(d, 'dkim', 'pass', `DKIM key ${k.selector} is published and matches ours`);
    const revoked = keys.some((t) => t.get('p') === '');
    return result(
      d,
      'dkim',
      fail,
      revoked
        ? `DKIM key ${k.selector} is published revoked (empty p=)${pending}`
        : `the key published at ${name} is not ours: signatures will fail${pending}`,
      [k.zoneLine],
    );
  });
}

function dmarc(f: DomainFacts): CheckResult {
  const d = f.domain;
  const fix = line(f.records, (r) => r.name.startsWith('_dmarc.'));
  if (!f.dmarc.ok && !f.dmarc.absent) return result(d, 'dmarc', 'fail', `DMARC look-up failed (${f.dmarc.error})`);
  const records = f.dmarc.ok ? f.dmarc.value.filter((t) => tags(t).get('v') === 'DMARC1') : [];
  if (records.length === 0) return result(d, 'dmarc', 'fail', `${d} publishes no DMARC record`, fix);
  // RFC 7489 §6.6.3: more than one record means no policy.
  if (records.length > 1) return result(d, 'dmarc', 'fail', `${d} publishes ${records.length} DMARC records`, fix);
  const p = (tags(records[0] as string).get('p') ?? '').toLowerCase();
  if (p === 'none') {
    return result(d, 'dmarc', 'warn', 'DMARC policy is p=none: receivers do nothing with forged mail', fix);
  }
  if (p === 'quarantine' || p === 'reject') return result(d, 'dmarc', 'pass', `DMARC policy is p=${p}`);
  return result(d, 'dmarc', 'fail', `DMARC record has no valid p= tag: "${records[0]}"`, fix);
}

function mtaSts(f: DomainFacts, now: Date): CheckResult {
  const d = f.domain;
  const fix = line(f.records, (r) => r.name.startsWith('_mta-sts.'));
  if (!f.mtaStsTxt.ok && !f.mtaStsTxt.absent) {
    return result(d, 'mta-sts', 'fail', `_mta-sts look-up failed (${f.mtaStsTxt.error})`);
  }
  const records = f.mtaStsTxt.ok ? f.mtaStsTxt.value.filter((t) => tags(t).get('v') === 'STSv1') : [];
  const served = f.mtaStsServed;
  if (records.length === 0) {
    return result(d, 'mta-sts', 'warn', `${d} publishes no MTA-STS record: senders may deliver without TLS`, [
      ...fix,
      ...line(f.records, (r) => r.name.startsWith('mta-sts.')),
    ]);
  }
  // RFC 8461 §3.1: senders refetch the policy only when the id changes.
  if (records.length > 1) return result(d, 'mta-sts', 'fail', `${d} publishes ${records.length} _mta-sts records`, fix);
  const id = tags(records[0] as string).get('id');
  const wantId = tags(f.mtaStsExpected.txt).get('id');
  if (id !== wantId) {
    return result(
      d,
      'mta-sts',
      'fail',
      `_mta-sts id is ${id ?? '(none)'}, ours is ${wantId}: senders keep an old policy`,
      fix,
    );
  }
  if (served === null) {
    return result(d, 'mta-sts', 'fail', 'the _mta-sts record is published, but no HTTPS listener serves the policy', [
      'set [http] tls_listen (port 443)',
    ]);
  }
  const host = `mta-sts.${d}`;
  if (!served.ok)
    return result(d, 'mta-sts', 'fail', `the policy at https://${host}/ cannot be fetched: ${served.error}`);
  if (served.status !== 200 || served.body !== f.mtaStsExpected.policy) {
    return result(
      d,
      'mta-sts',
      'fail',
      `https://${host}/.well-known/mta-sts.txt answers ${served.status}, not our policy`,
    );
  }
  // RFC 8461 §3.3: senders fetch the policy over HTTPS with a valid certificate for mta-sts.<domain>.
  const v = certVerdict(served.cert, host, now);
  if (v.status !== 'pass') {
    return result(d, 'mta-sts', 'fail', `the certificate served for ${host} ${v.problem}: senders ignore the policy`, [
      `a certificate covering ${host} ([acme] adds it)`,
    ]);
  }
  return result(d, 'mta-sts', 'pass', `MTA-STS record and policy (id ${id}) served`);
}

function tlsRpt(f: DomainFacts): CheckResult {
  const d = f.domain;
  const fix = line(f.records, (r) => r.name.startsWith('_smtp._tls.'));
  if (!f.tlsRpt.ok && !f.tlsRpt.absent)
    return result(d, 'tls-rpt', 'fail', `_smtp._tls look-up failed (${f.tlsRpt.error})`);
  const records = f.tlsRpt.ok ? f.tlsRpt.value.filter((t) => t.startsWith('v=TLSRPTv1')) : [];
  if (records.length === 0)
    return result(d, 'tls-rpt', 'warn', `${d} publishes no TLS-RPT record: no reports of TLS failures`, fix);
  // RFC 8460 §3: rua is required; more than one record: no reports.
  if (records.length > 1 || !tags(records[0] as string).get('rua')) {
    return result(d, 'tls-rpt', 'fail', `TLS-RPT record is not usable: "${records.join('", "')}"`, fix);
  }
  return result(d, 'tls-rpt', 'pass', `TLS reports go to ${tags(records[0] as string).get('rua')}`);
}

/** 0 all pass, 3 warnings only, 1 any failure (docs/cli.md). */
export function exitStatus(results: readonly CheckResult[]): number {
  if (results.some((r) => r.status === 'fail')) return 1;
  return results.some((r) => r.status === 'warn') ? 3 : 0;
}
