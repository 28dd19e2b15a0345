// /healthz/live and /healthz/ready over real HTTP and HTTPS against the real server
// (src/web/health.ts): ready names each check; it turns 503 when mail can no longer be written
// under the Maildir root (a file where the probe directory goes: tests run as root, for whom
// chmod stops nothing) and 200 again once it can; answers are cached for about a second.

import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/core/log.ts';
import { Readiness } from '../../src/web/health.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { fetchLocal } from './client.ts';

let t: TestServer;
let http: number;
let https: number;

before(async () => {
  t = await startTestServer({ extra: '[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = ["127.0.0.1:0"]\n' });
  http = t.server.http[0]?.port ?? 0;
  https = t.server.http[1]?.port ?? 0;
});

after(() => t.stop());

const ready = (secure = false) =>
  fetchLocal(secure ? https : http, { path: '/healthz/ready', host: 'anything.example', secure });

/** Asks until the answer has `status` (the previous answer may be cached for a second). */
async function readyBecomes(status: number, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await ready();
    if (r.status === status) return r;
    if (Date.now() > deadline) assert.fail(`ready stayed ${r.status}: ${r.body}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('health endpoints', () => {
  test('live and ready answer 200 on HTTP and HTTPS, ready with every check named', async () => {
    for (const secure of [false, true]) {
      const live = await fetchLocal(secure ? https : http, { path: '/healthz/live', host: 'x', secure });
      assert.equal(live.status, 200);
      assert.equal(live.body, 'live\n');
      const r = await ready(secure);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['content-type'], 'application/json');
      const body = JSON.parse(r.body);
      assert.equal(body.status, 'ready');
      assert.deepEqual(Object.keys(body.checks).sort(), ['directory', 'listeners', 'mail_index', 'maildir']);
      for (const c of Object.values(body.checks) as { ok: boolean; ms: number }[]) {
        assert.equal(c.ok, true);
        assert.equal(typeof c.ms, 'number');
      }
    }
    // The probe leaves nothing behind.
    assert.deepEqual(await readdir(join(t.config.storage.maildir, '.arcline-probe')), []);
    const post = await fetchLocal(http, { method: 'POST', path: '/healthz/ready', host: 'x', body: '' });
    assert.equal(post.status, 405);
  });

  test('ready turns 503 when the Maildir root cannot be written, and 200 again after', async () => {
    const probeDir = join(t.config.storage.maildir, '.arcline-probe');
    await rm(probeDir, { recursive: true, force: true });
    await writeFile(probeDir, 'in the way');
    const down = await readyBecomes(503);
    const body = JSON.parse(down.body);
    assert.equal(body.status, 'not ready');
    assert.equal(body.checks.maildir.ok, false);
    assert.equal(body.checks.directory.ok, true);
    assert.equal(body.checks.mail_index.ok, true);
    assert.doesNotMatch(down.body, /arcline-probe|ENOTDIR|\//, 'no reason, no path in the answer');
    await t.logged((l) => l.msg === 'readiness check failed' && l.check === 'maildir');
    // Live stays 200: restarting would not help.
    assert.equal((await fetchLocal(http, { path: '/healthz/live', host: 'x' })).status, 200);
    await rm(probeDir);
    await readyBecomes(200);
    await t.logged((l) => l.msg === 'readiness check passes again' && l.check === 'maildir');
  });
});

describe('Readiness', () => {
  test('one round of checks per interval however many ask; a hung check times out', async () => {
    let runs = 0;
    const r = new Readiness(
      [
        {
          name: 'counted',
          run: () => {
            runs++;
          },
        },
      ],
      silentLogger(),
      { cacheMs: 60_000, timeoutMs: 50 },
    );
    const reports = await Promise.all(Array.from({ length: 100 }, () => r.report()));
    assert.equal(runs, 1);
    assert.ok(reports.every((x) => x.ready));
    await r.report();
    assert.equal(runs, 1, 'the finished round is reused within the interval');
    const uncached = new Readiness([{ name: 'counted', run: () => void runs++ }], silentLogger(), { cacheMs: 0 });
    await uncached.report();
    await uncached.report();
    assert.equal(runs, 3, 'a new round once the interval is over');
    const fresh = new Readiness([{ name: 'hung', run: () => new Promise(() => {}) }], silentLogger(), {
      timeoutMs: 50,
    });
    const started = performance.now();
    const report = await fresh.report();
    assert.equal(report.ready, false);
    assert.ok(performance.now() - started < 1000);
  });
});
