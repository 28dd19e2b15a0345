// What mail clients are told when they configure themselves (web/autoconfig.ts serves it), as
// pure builders from one description of the servers (`ClientSettings`):
//   - Thunderbird's autoconfig file, "config-v1.1.xml" (Mozilla's ISPDB format:
//     https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat);
//   - Outlook's POX autodiscover response ([MS-OXDSCLI] §2.2.4, response schema
//     http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 with the outlook
//     2006a account settings);
//   - an Apple configuration profile (.mobileconfig, an unsigned XML property list with one
//     com.apple.mail.managed payload).
// Every one names the same servers in the same order: implicit TLS first (RFC 8314 §5.1 prefers
// it), STARTTLS second, and only the listeners that are configured. The login name is always the
// full address (the directory's login name), the password goes in the clear inside TLS.
// Strings are XML-escaped here and nowhere else.

import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { isLoopback, peerAddress } from '../core/ip.ts';

export interface Endpoint {
  readonly port: number;
  /** 'tls': implicit TLS (993, 465); 'starttls': plain then STARTTLS (143, 587). */
  readonly security: 'tls' | 'starttls';
}

export interface ClientSettings {
  /** The name clients connect to: the server's `hostname` (the certificate carries it). */
  readonly hostname: string;
  /** Implicit TLS first, then STARTTLS; empty when IMAP does not listen. */
  readonly imap: readonly Endpoint[];
  readonly submission: readonly Endpoint[];
}

/** The port clients are told for a kind of listener: that of its first listener on a public
 *  (non-loopback) address, else of its first listener; null when none is configured. The bound
 *  port, so ":993" gives 993 and "127.0.0.1:0" (tests) the port the kernel chose. */
export function advertisedPort(bound: readonly AddressInfo[]): number | null {
  return (bound.find((b) => !isLoopback(peerAddress(b.address))) ?? bound[0])?.port ?? null;
}

/** The endpoints of one service from its bound listeners (implicit TLS ones first). */
export function endpoints(tlsBound: readonly AddressInfo[], starttlsBound: readonly AddressInfo[]): Endpoint[] {
  const out: Endpoint[] = [];
  const t = advertisedPort(tlsBound);
  if (t !== null) out.push({ port: t, security: 'tls' });
  const s = advertisedPort(starttlsBound);
  if (s !== null) out.push({ port: s, security: 'starttls' });
  return out;
}

/** XML character data and attribute values (XML 1.0 §2.4, §3.3.3). */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[c]};`);
}

const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>';

/** Thunderbird: config-v1.1.xml for `domain`; %EMAILADDRESS% is filled in by the client. */
export function thunderbirdConfig(s: ClientSettings, domain: string): string {
  const d = xmlEscape(domain);
  const server = (tag: 'incomingServer' | 'outgoingServer', type: string, e: Endpoint) =>
    [
      `    <${tag} type="${type}">`,
      `      <hostname>${xmlEscape(s.hostname)}</hostname>`,
      `      <port>${e.port}</port>`,
      `      <socketType>${e.security === 'tls' ? 'SSL' : 'STARTTLS'}</socketType>`,
      '      <username>%EMAILADDRESS%</username>',
      '      <authentication>password-cleartext</authentication>',
      `    </${tag}>`,
    ].join('\n');
  return [
    XML_DECL,
    '<clientConfig version="1.1">',
    `  <emailProvider id="${d}">`,
    `    <domain>${d}</domain>`,
    `    <displayName>${d}</displayName>`,
    `    <displayShortName>${d}</displayShortName>`,
    ...s.imap.map((e) => server('incomingServer', 'imap', e)),
    ...s.submission.map((e) => server('outgoingServer', 'smtp', e)),
    '  </emailProvider>',
    '</clientConfig>',
    '',
  ].join('\n');
}

export const AUTODISCOVER_RESPONSE_NS = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';
export const OUTLOOK_RESPONSE_NS = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';

/** Outlook: the POX autodiscover answer for `address`, one <Protocol> per kind (Outlook uses the
 *  first of each type), with Encryption telling implicit TLS (SSL) from STARTTLS (TLS). */
export function autodiscoverResponse(s: ClientSettings, address: string): string {
  const a = xmlEscape(address);
  const protocol = (type: 'IMAP' | 'SMTP', e: Endpoint | undefined) =>
    e
      ? [
          '      <Protocol>',
          `        <Type>${type}</Type>`,
          `        <Server>${xmlEscape(s.hostname)}</Server>`,
          `        <Port>${e.port}</Port>`,
          '        <DomainRequired>off</DomainRequired>',
          `        <LoginName>${a}</LoginName>`,
          '        <SPA>off</SPA>',
          `        <Encryption>${e.security === 'tls' ? 'SSL' : 'TLS'}</Encryption>`,
          '        <AuthRequired>on</AuthRequired>',
          ...(type === 'SMTP' ? ['        <UsePOPAuth>off</UsePOPAuth>', '        <SMTPLast>off</SMTPLast>'] : []),
          '      </Protocol>',
        ]
      : [];
  return [
    XML_DECL,
    `<Autodiscover xmlns="${AUTODISCOVER_RESPONSE_NS}">`,
    `  <Response xmlns="${OUTLOOK_RESPONSE_NS}">`,
    '    <Account>',
    '      <AccountType>email</AccountType>',
    '      <Action>settings</Action>',
    ...protocol('IMAP', s.imap[0]),
    ...protocol('SMTP', s.submission[0]),
    '    </Account>',
    '  </Response>',
    '</Autodiscover>',
    '',
  ].join('\n');
}

/** A name-based UUID (RFC 9562 §5.5, version 5, SHA-1) in a namespace of our own: the same
 *  server and address always give the same PayloadUUID, so a profile downloaded again replaces
 *  the installed one instead of adding a second account. */
export function stableUuid(name: string): string {
  // RFC 9562 §6.6: a namespace is any UUID; this one is arcline's (random, fixed forever).
  const ns = Buffer.from('5f2b1c1e8a5d4f0b9e6c3a7d2b4e8f10', 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest().subarray(0, 16);
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`.toUpperCase();
}

/** Apple: an unsigned configuration profile with one com.apple.mail.managed payload (Apple's
 *  "Configuration Profile Reference", MailPayload). Apple's UseSSL covers both implicit TLS and
 *  STARTTLS: the port tells which. Null when IMAP or submission does not listen. */
export function appleMobileconfig(s: ClientSettings, address: string): string | null {
  const imap = s.imap[0];
  const smtp = s.submission[0];
  if (!imap || !smtp) return null;
  const a = xmlEscape(address);
  const host = xmlEscape(s.hostname);
  const reversed = xmlEscape(s.hostname.split('.').reverse().join('.'));
  const profileUuid = stableUuid(`profile ${s.hostname} ${address}`);
  const mailUuid = stableUuid(`mail ${s.hostname} ${address}`);
  const str = (k: string, v: string) => `<key>${k}</key><string>${v}</string>`;
  const int = (k: string, v: number) => `<key>${k}</key><integer>${v}</integer>`;
  const bool = (k: string, v: boolean) => `<key>${k}</key><${v}/>`;
  const mail = [
    str('EmailAccountDescription', a),
    str('EmailAccountType', 'EmailTypeIMAP'),
    str('EmailAddress', a),
    str('IncomingMailServerAuthentication', 'EmailAuthPassword'),
    str('IncomingMailServerHostName', host),
    int('IncomingMailServerPortNumber', imap.port),
    bool('IncomingMailServerUseSSL', true),
    str('IncomingMailServerUsername', a),
    str('OutgoingMailServerAuthentication', 'EmailAuthPassword'),
    str('OutgoingMailServerHostName', host),
    int('OutgoingMailServerPortNumber', smtp.port),
    bool('OutgoingMailServerUseSSL', true),
    str('OutgoingMailServerUsername', a),
    bool('OutgoingPasswordSameAsIncomingPassword', true),
    str('PayloadDescription', `Mail account ${a}`),
    str('PayloadDisplayName', a),
    str('PayloadIdentifier', `${reversed}.mail.${mailUuid}`),
    str('PayloadType', 'com.apple.mail.managed'),
    str('PayloadUUID', mailUuid),
    int('PayloadVersion', 1),
  ];
  const profile = [
    str('PayloadDescription', `Mail settings for ${a} on ${host}`),
    str('PayloadDisplayName', a),
    str('PayloadIdentifier', `${reversed}.profile.${profileUuid}`),
    str('PayloadOrganization', host),
    bool('PayloadRemovalDisallowed', false),
    str('PayloadType', 'Configuration'),
    str('PayloadUUID', profileUuid),
    int('PayloadVersion', 1),
  ];
  return [
    XML_DECL,
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    '<dict>',
    '  <key>PayloadContent</key>',
    '  <array>',
    '    <dict>',
    ...mail.map((l) => `      ${l}`),
    '    </dict>',
    '  </array>',
    ...profile.map((l) => `  ${l}`),
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}
