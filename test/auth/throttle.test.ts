// Fair login throttling against the real server (issue #10 item 6): failures slow down the pair
// (address, account) and the address, never the account; more connections do not make guessing
// faster; trusted networks are never throttled; the fail2ban line is stable. "Other addresses"
// are other loopback addresses (127.0.0.x) the clients bind to.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { type Attempt, imapLogin, PASSWORD, PROTOCOLS, submissionLogin } from './clients.ts';

const USERS = ['alice@example.test', 'bob@example.test', 'carol@example.test'];

/** 12 wrong passwords for `user` at once, each on its own connection. */
async function burst(login: typeof imapLogin, t: TestServer, user: string, from: string): Promise<Attempt[]> {
  return Promise.all(Array.from({ length: 12 }, () => login(t, user, 'wrong-password', from)));
}

describe('fair throttling: the owner and the neighbours are never locked out', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      submission: true,
      users: USERS,
      auth: 'failure_delay = "0s"\nmax_delay = "5s"\nmax_address_delay = "3s"',
    });
  });
  after(async () => {
    await t?.stop();
  });

  test('12 failures for bob from one address: bob elsewhere logs in at once, carol behind it is only slowed (IMAP and submission)', async () => {
    // Each protocol runs from its own addresses, at the same time: the two share one throttle.
    await Promise.all(
      PROTOCOLS.map(async ([name, login]) => {
        const [attacker, owner] = name === 'imap' ? ['127.0.0.2', '127.0.0.3'] : ['127.0.0.4', '127.0.0.5'];
        const failures = await burst(login, t, 'bob@example.test', attacker);
        assert.ok(
          failures.every((a) => !a.ok),
          failures.map((a) => a.reply).join('|'),
        );
        const [owner1, carol, pair] = await Promise.all([
          // The owner, from an address that has not failed: neither refused nor delayed.
          login(t, 'bob@example.test', PASSWORD, owner),
          // Another account behind the failing address (a household NAT): slowed at most.
          login(t, 'carol@example.test', PASSWORD, attacker),
          // The attacking pair itself is slowed down before its attempt is even verified.
          login(t, 'bob@example.test', PASSWORD, attacker),
        ]);
        assert.ok(owner1.ok, `${name}: ${owner1.reply}`);
        assert.ok(owner1.ms < 2000, `${name}: the owner waited ${owner1.ms} ms`);
        assert.ok(carol.ok, `${name}: ${carol.reply}`);
        assert.ok(carol.ms < 3000 + 2000, `${name}: carol waited ${carol.ms} ms (max_address_delay is 3 s)`);
        assert.ok(pair.ms > 2500, `${name}: bob from the attacking address waited only ${pair.ms} ms`);
      }),
    );
  });
});

describe('throttling per pair does not go faster with more connections; trusted networks', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      submission: true,
      users: USERS,
      auth: 'failure_delay = "0s"\nmax_delay = "1s"\nmax_address_delay = "1s"\ntrusted_networks = ["127.0.0.9/32"]',
    });
  });
  after(async () => {
    await t?.stop();
  });

  test('parallel attempts of one failing pair are spaced by its delay, and the excess is refused unverified', async () => {
    const from = '127.0.0.6';
    assert.equal((await imapLogin(t, 'bob@example.test', 'wrong', from)).ok, false);
    const started = performance.now();
    const wave = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const a = await imapLogin(t, 'bob@example.test', 'wrong', from);
        return { ...a, at: performance.now() - started };
      }),
    );
    const refused = wave.filter((a) => /\[UNAVAILABLE\] Too many failed logins/.test(a.reply));
    const verified = wave.filter((a) => /\[AUTHENTICATIONFAILED\]/.test(a.reply)).sort((a, b) => a.at - b.at);
    assert.equal(refused.length + verified.length, 8, wave.map((a) => a.reply).join('|'));
    assert.ok(refused.length >= 2, `refused ${refused.length} of 8`);
    assert.ok(verified.length >= 2, `verified ${verified.length} of 8`);
    // Slots 0.5 s apart (then 1 s): the answers come one by one, not all at once (the time to
    // verify each one blurs single gaps a little, not the whole span).
    const at = verified.map((a) => Math.round(a.at));
    for (let i = 1; i < at.length; i++) assert.ok((at[i] ?? 0) - (at[i - 1] ?? 0) >= 150, `answered at ${at} ms`);
    assert.ok((at.at(-1) ?? 0) - (at[0] ?? 0) >= 350 * (at.length - 1), `answered at ${at} ms`);
    assert.ok(
      t.logs.some((l) => l.msg === 'auth refused' && l.ip === from && l.user === 'bob@example.test'),
      'an "auth refused" line',
    );
    // The same account from another address is not touched by any of this.
    const other = await submissionLogin(t, 'bob@example.test', PASSWORD, '127.0.0.7');
    assert.ok(other.ok && other.ms < 2500, `${other.reply} after ${other.ms} ms`);
  });

  test('a trusted network is never slowed down or refused', async () => {
    const from = '127.0.0.9';
    const failures = await burst(imapLogin, t, 'alice@example.test', from);
    assert.ok(failures.every((a) => /\[AUTHENTICATIONFAILED\]/.test(a.reply)));
    const ok = await imapLogin(t, 'alice@example.test', PASSWORD, from);
    assert.ok(ok.ok && ok.ms < 1500, `${ok.reply} after ${ok.ms} ms`);
    // The failures are still logged (for the admin), just not throttled.
    assert.ok(t.logs.filter((l) => l.msg === 'auth failed' && l.ip === from).length >= 12);
  });

  test('the "auth failed" log line matches the documented fail2ban filter', async () => {
    await submissionLogin(t, 'carol@example.test', 'wrong', '127.0.0.8');
    await imapLogin(t, 'nobody@example.test', 'wrong', '127.0.0.8');
    // docs/security.md: failregex = ^\{.*"service":"(?:imap|submission|http)","ip":"<HOST>",.*"msg":"auth failed"
    const failregex = /^\{.*"service":"(?:imap|submission|http)","ip":"(?<host>[0-9a-fA-F.:]+)",.*"msg":"auth failed"/;
    const lines = t.logs.filter((l) => l.ip === '127.0.0.8').map((l) => JSON.stringify(l));
    const hits = lines.filter((l) => failregex.exec(l)?.groups?.host === '127.0.0.8');
    assert.equal(hits.length, 2, lines.join('\n'));
    const failed = t.logs.filter((l) => l.msg === 'auth failed' && l.ip === '127.0.0.8');
    assert.deepEqual(
      failed.map((l) => [l.service, l.user, l.reason]),
      [
        ['submission', 'carol@example.test', 'password'],
        ['imap', 'nobody@example.test', 'unknown-user'],
      ],
    );
  });
});
