// Blocklist monitoring end to end: the real server with [monitor] dnsbl pointing at a zone of the
// test DNS server, our outbound address listed there (RFC 5782 §2.1: 127.0.0.x), then delisted.
// The server notices within its (short) interval: the gauge, the log lines, one message in the
// postmaster's INBOX (postmaster@example.test is an alias of alice), none on the next round nor
// after a restart (the listing is remembered in the state directory).

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blocklistListed, registry } from '../../src/core/metrics.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { waitUntil } from '../harness/submit.ts';

const ADDRESS = '192.0.2.10';
const LISTED = '10.2.0.192.bl.test';

async function gauge(zone: string, address: string): Promise<number | undefined> {
  const m = await blocklistListed.get();
  return m.values.find((v) => v.labels.zone === zone && v.labels.address === address)?.value;
}

describe('blocklist monitor', () => {
  let dns: TestDnsServer;
  let server: TestServer;
  let dir: string;
  const config = () => ({
    extra: `[dns]\nservers = ["${dns.address}"]\n[monitor]\ndnsbl = ["bl.test", "clean.test"]\ninterval = "300ms"\n`,
    server: `public_addresses = ["${ADDRESS}"]`,
  });
  const rounds = (s: TestServer) => s.logs.filter((l) => l.msg === 'blocklist round').length;
  /** Resolves once `s` finished `n` more rounds than it had. */
  const moreRounds = async (s: TestServer, n: number) => {
    const start = rounds(s);
    await waitUntil('blocklist rounds', async () => rounds(s) >= start + n);
  };

  before(async () => {
    dns = await startTestDns([
      { type: 'A', name: LISTED, address: '127.0.0.2' },
      { type: 'TXT', name: LISTED, text: 'Listed for spam\u0007 traps: https://bl.test/lookup' },
    ]);
    // Provisioned first without the monitor (a server given a directory adds no users), so the
    // first round already finds the postmaster's domain.
    dir = await mkdtemp(join(tmpdir(), 'arcline-monitor-'));
    const setup = await startTestServer({ dir });
    await setup.admin.ops.addDomain('example.test');
    await setup.admin.ops.addUser('alice@example.test', { password: 'secret-password' });
    await setup.stop();
    server = await startTestServer({ ...config(), dir });
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
    await dns.close();
  });

  test('a new listing: the gauge, a warning, and one message to the postmaster', async () => {
    const warn = await server.logged((l) => l.msg === 'blocklist listing', 10_000);
    assert.equal(warn.zone, 'bl.test');
    assert.equal(warn.address, ADDRESS);
    assert.equal(warn.codes, '127.0.0.2');
    const files = await waitUntil('the notice in INBOX', async () => {
      const f = await server.newFiles('alice@example.test');
      return f.length > 0 && f;
    });
    assert.equal(files.length, 1);
    const [msg] = await server.messages('alice@example.test');
    const text = msg?.toString() ?? '';
    assert.match(text, /^Return-Path: <>\r\n/);
    assert.match(text, /\r\nSubject: 192\.0\.2\.10 is listed on bl\.test\r\n/);
    assert.match(text, /\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx\.test\.example>\r\n/);
    assert.match(
      text,
      /The list says: Listed for spam traps: https:\/\/bl\.test\/lookup/,
      'control characters cleaned',
    );
    assert.equal(await gauge('bl.test', ADDRESS), 1);
    assert.equal(await gauge('clean.test', ADDRESS), 0);
    const exposition = await registry.metrics();
    assert.match(exposition, /^arcline_blocklist_listed\{zone="bl\.test",address="192\.0\.2\.10"\} 1$/m);
    // The state file is replaced after the round's notices (the monitor does not wait on it
    // before warning): await its listing.
    const state = await waitUntil('the listing in blocklist.json', async () => {
      const text = await readFile(join(dir, 'state', 'blocklist.json'), 'utf8').catch(() => '');
      const parsed = text ? (JSON.parse(text) as { listed: { zone: string }[] }) : null;
      return parsed && parsed.listed.length > 0 ? parsed : null;
    });
    assert.equal(state.listed.length, 1);
    assert.equal(state.listed[0]?.zone, 'bl.test');
  });

  test('the next rounds send nothing more, nor does a restart', async () => {
    await moreRounds(server, 2);
    assert.equal((await server.newFiles('alice@example.test')).length, 1);
    assert.equal(server.logs.filter((l) => l.msg === 'blocklist listing').length, 1);
    await server.stop();
    server = await startTestServer({ ...config(), dir });
    await moreRounds(server, 2);
    assert.equal((await server.newFiles('alice@example.test')).length, 1);
    assert.equal(server.logs.filter((l) => l.msg === 'blocklist listing').length, 0);
    assert.equal(await gauge('bl.test', ADDRESS), 1);
  });

  test('a failed look-up is not a delisting', async () => {
    dns.failing.add(LISTED);
    await moreRounds(server, 2);
    assert.equal(server.logs.filter((l) => l.msg === 'blocklist delisting').length, 0);
    assert.equal(await gauge('bl.test', ADDRESS), 1);
    dns.failing.delete(LISTED);
  });

  test('a delisting is logged, the gauge drops, and a listing after it is new again', async () => {
    dns.remove(LISTED);
    const info = await server.logged((l) => l.msg === 'blocklist delisting', 10_000);
    assert.equal(info.zone, 'bl.test');
    assert.equal(await gauge('bl.test', ADDRESS), 0);
    dns.add({ type: 'A', name: LISTED, address: '127.0.0.4' });
    await server.logged((l) => l.msg === 'blocklist listing', 10_000);
    await waitUntil('the second notice', async () => (await server.newFiles('alice@example.test')).length === 2);
  });
});
