// The autoconfiguration documents (src/web/client-config.ts) from plain settings: which ports are
// advertised, STARTTLS-only and IMAP-less setups, escaping, and stable UUIDs.

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import {
  advertisedPort,
  appleMobileconfig,
  autodiscoverResponse,
  type ClientSettings,
  endpoints,
  stableUuid,
  thunderbirdConfig,
} from '../../src/web/client-config.ts';

const at = (address: string, port: number): AddressInfo => ({
  address,
  port,
  family: address.includes(':') ? 'IPv6' : 'IPv4',
});
const parser = new XMLParser({ ignoreAttributes: false, parseTagValue: false });

describe('client-config', () => {
  test('the advertised port: the first public listener, else the first; none when unconfigured', () => {
    assert.equal(advertisedPort([]), null);
    assert.equal(advertisedPort([at('127.0.0.1', 2993)]), 2993);
    assert.equal(advertisedPort([at('127.0.0.1', 2993), at('::', 993)]), 993);
    assert.equal(advertisedPort([at('::1', 10), at('::ffff:127.0.0.1', 11), at('0.0.0.0', 993)]), 993);
    assert.deepEqual(endpoints([at('0.0.0.0', 993)], [at('0.0.0.0', 143)]), [
      { port: 993, security: 'tls' },
      { port: 143, security: 'starttls' },
    ]);
    assert.deepEqual(endpoints([], [at('0.0.0.0', 587)]), [{ port: 587, security: 'starttls' }]);
  });

  test('STARTTLS only: Thunderbird gets STARTTLS entries, Outlook Encryption TLS', () => {
    const s: ClientSettings = {
      hostname: 'mx.example.org',
      imap: [{ port: 143, security: 'starttls' }],
      submission: [{ port: 587, security: 'starttls' }],
    };
    const tb = thunderbirdConfig(s, 'example.org');
    assert.equal(XMLValidator.validate(tb), true);
    const p = parser.parse(tb).clientConfig.emailProvider;
    assert.equal(p.incomingServer.socketType, 'STARTTLS');
    assert.equal(p.outgoingServer.port, '587');
    const ad = parser.parse(autodiscoverResponse(s, 'a@example.org')).Autodiscover.Response.Account.Protocol;
    assert.deepEqual(
      ad.map((x: { Type: string; Encryption: string }) => [x.Type, x.Encryption]),
      [
        ['IMAP', 'TLS'],
        ['SMTP', 'TLS'],
      ],
    );
  });

  test('no IMAP listener: no incoming server, no Apple profile', () => {
    const s: ClientSettings = { hostname: 'mx.example.org', imap: [], submission: [{ port: 465, security: 'tls' }] };
    const p = parser.parse(thunderbirdConfig(s, 'example.org')).clientConfig.emailProvider;
    assert.equal(p.incomingServer, undefined);
    assert.equal(appleMobileconfig(s, 'a@example.org'), null);
  });

  test('markup in an address is escaped; UUIDs are stable, version 5, per name', () => {
    const s: ClientSettings = {
      hostname: 'mx.example.org',
      imap: [{ port: 993, security: 'tls' }],
      submission: [{ port: 465, security: 'tls' }],
    };
    const odd = `"<a>&'"@example.org`;
    const ad = autodiscoverResponse(s, odd);
    assert.equal(XMLValidator.validate(ad), true);
    assert.equal(parser.parse(ad).Autodiscover.Response.Account.Protocol[0].LoginName, odd);
    const profile = appleMobileconfig(s, odd) ?? '';
    assert.equal(XMLValidator.validate(profile), true);
    assert.equal(stableUuid('x'), stableUuid('x'));
    assert.notEqual(stableUuid('x'), stableUuid('y'));
    assert.match(stableUuid('x'), /^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
  });
});
