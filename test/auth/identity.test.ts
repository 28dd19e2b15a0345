// One canonical identity (issue #10 item 5): every spelling of an account that can reach it is
// that account for throttling, the cache and the log; names that cannot name an account are
// refused before any lookup or hashing. IMAP LOGIN and submission AUTH PLAIN alike.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { PASSWORD, PROTOCOLS } from './clients.ts';

/** Spellings of t@example.test that reached the account before, while the limiter counted each
 *  of them as a user of its own. */
const SPELLINGS = [
  't@example.test ',
  ' t@example.test',
  't@example.test.',
  '"t"@example.test',
  '"\\t"@example.test',
  'T@Example.TEST',
];

describe('one canonical identity for logins', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      submission: true,
      users: ['t@example.test'],
      auth: 'failure_delay = "0s"\nmax_delay = "1s"\nmax_address_delay = "1s"',
    });
  });
  after(async () => {
    await t?.stop();
  });

  test('every spelling of an account counts as the account: failures, throttling, log lines, success', async () => {
    await Promise.all(
      PROTOCOLS.map(async ([name, login]) => {
        const [attacker, owner] = name === 'imap' ? ['127.0.0.2', '127.0.0.3'] : ['127.0.0.4', '127.0.0.5'];
        for (const s of SPELLINGS) {
          const a = await login(t, s, 'wrong-password', attacker);
          assert.equal(a.ok, false, `${name} ${JSON.stringify(s)}: ${a.reply}`);
        }
        const failed = t.logs.filter((l) => l.msg === 'auth failed' && l.ip === attacker);
        assert.equal(failed.length, SPELLINGS.length);
        for (const l of failed) assert.equal(l.user, 't@example.test', `${name}: ${JSON.stringify(l)}`);
        // Six failures of one pair: the next attempt, in any spelling, waits for its slot.
        const delayed = await login(t, 'T@EXAMPLE.TEST.', PASSWORD, attacker);
        assert.ok(delayed.ok, delayed.reply);
        assert.ok(delayed.ms > 600, `${name}: waited only ${delayed.ms} ms after 6 failures of the pair`);
        // From a clean address, every spelling logs in as the one account.
        for (const s of SPELLINGS) {
          const a = await login(t, s, PASSWORD, owner);
          assert.ok(a.ok, `${name} ${JSON.stringify(s)}: ${a.reply}`);
        }
        const ok = t.logs.filter((l) => l.msg === 'auth ok' && l.ip === owner);
        assert.deepEqual(new Set(ok.map((l) => l.user)), new Set(['t@example.test']));
      }),
    );
  });

  test('names that cannot name an account are refused before any lookup, and count for the address', async () => {
    await Promise.all(
      PROTOCOLS.map(async ([name, login]) => {
        const from = name === 'imap' ? '127.0.0.6' : '127.0.0.7';
        for (const bad of ['t', 't@example..test', `${'x'.repeat(400)}@example.test`, 't@[127.0.0.1]']) {
          const a = await login(t, bad, PASSWORD, from);
          assert.equal(a.ok, false, `${name} ${bad.slice(0, 30)}: ${a.reply}`);
        }
        const failed = t.logs.filter((l) => l.msg === 'auth failed' && l.ip === from);
        assert.deepEqual(
          failed.map((l) => l.reason),
          ['invalid-name', 'invalid-name', 'invalid-name', 'invalid-name'],
        );
        assert.ok(failed.every((l) => typeof l.user === 'string' && l.user.length <= 100));
      }),
    );
  });
});
