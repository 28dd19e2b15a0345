// `arcline dns-records DOMAIN`: every record a domain needs for arcline, in zone-file syntax,
// ready to paste. Pure: the caller passes the host name and the DKIM keys.
//   MX (RFC 5321 §5.1), SPF (RFC 7208), DKIM (RFC 6376 §3.6.1), DMARC (RFC 7489 §6.1),
//   SRV for submission and IMAP (RFC 6186, RFC 8314 §5.1), MTA-STS (RFC 8461 §3.1) and TLS
//   reporting (RFC 8460 §3), and the names the HTTPS listener serves (mta-sts., autoconfig.),
//   with Outlook's autodiscover SRV record ([MS-OXDISCO] §3.1.5.2) for client autoconfiguration
//   (docs/autoconfig.md).

import { type DkimKey, dkimZoneLine } from './dkim-keys.ts';
import { type MtaStsSettings, mtaStsPolicy, mtaStsTxt, tlsRptTxt } from './mta-sts.ts';

export function dnsRecords(opts: {
  domain: string;
  hostname: string;
  keys: readonly DkimKey[];
  /** [mta_sts]: the _mta-sts id is a hash of the policy these settings give. */
  mtaSts: MtaStsSettings;
}): string[] {
  const d = `${opts.domain}.`;
  const h = `${opts.hostname}.`;
  const lines = [
    `; DNS records for ${opts.domain}, served by ${opts.hostname}`,
    '; The host name needs its own address records (A, and AAAA if the server has IPv6), and the',
    `; server's addresses need PTR records pointing back to ${opts.hostname} (ask your provider).`,
    `;   ${h} 3600 IN A    <the server's IPv4 address>`,
    `;   ${h} 3600 IN AAAA <the server's IPv6 address>`,
    '',
    '; Mail for the domain goes to this server',
    `${d} 3600 IN MX 10 ${h}`,
    '; SPF: only the domain\'s MX hosts send its mail (add "include:..." for a relay that sends for you)',
    `${d} 3600 IN TXT "v=spf1 mx -all"`,
  ];
  if (opts.keys.length === 0) {
    lines.push(`; DKIM: no key yet: arcline dkim keygen ${opts.domain}`);
  } else {
    lines.push('; DKIM: the public half of every signing key');
    for (const k of opts.keys) lines.push(dkimZoneLine(k));
  }
  lines.push(
    '; DMARC: receivers quarantine mail that fails SPF and DKIM alignment; reports go to postmaster',
    `_dmarc.${d} 3600 IN TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@${opts.domain}"`,
    '; Mail clients find the servers (RFC 6186); implicit TLS first (RFC 8314)',
    `_submissions._tcp.${d} 3600 IN SRV 0 1 465 ${h}`,
    `_submission._tcp.${d} 3600 IN SRV 1 1 587 ${h}`,
    `_imaps._tcp.${d} 3600 IN SRV 0 1 993 ${h}`,
    `_imap._tcp.${d} 3600 IN SRV 1 1 143 ${h}`,
    '; MTA-STS (RFC 8461): senders fetch the policy from https://mta-sts.<domain>/.well-known/mta-sts.txt,',
    `; which this server serves (mode ${opts.mtaSts.mode}); the id changes whenever the policy does`,
    `_mta-sts.${d} 3600 IN TXT "${mtaStsTxt(mtaStsPolicy(opts.hostname, opts.mtaSts))}"`,
    '; TLS reporting (RFC 8460): senders report failed TLS sessions to postmaster',
    `_smtp._tls.${d} 3600 IN TXT "${tlsRptTxt(opts.domain)}"`,
    '; The names this server answers on HTTPS (MTA-STS policy, client autoconfiguration); with',
    '; [acme] on, the certificate covers them, so they must point here before it is requested',
    `mta-sts.${d} 3600 IN CNAME ${h}`,
    `autoconfig.${d} 3600 IN CNAME ${h}`,
    '; Outlook finds the autodiscover answer through this SRV record, on the host name the certificate',
    `; carries. The name autodiscover.${opts.domain} is optional: only if the certificate covers it too`,
    '; ([acme] domains, or your own certificate), else Outlook warns about the certificate',
    `_autodiscover._tcp.${d} 3600 IN SRV 0 1 443 ${h}`,
    `; autodiscover.${d} 3600 IN CNAME ${h}`,
  );
  return lines;
}
