// The spam stage when rspamd is not the rspamd of the happy path, over real SMTP sessions: no
// rspamd at all (failure = "accept" delivers and logs, "tempfail" answers 451 4.7.1), one that
// never answers (the timeout holds), one that answers too much or nonsense; and what is sent
// to it: a small HTTP peer on loopback records the request (rspamd's headers, the body as
// received) and answers like rspamd. Messages over max_size and trusted clients are not scanned.

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseConfigText } from '../../src/config/load.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { freePort } from '../harness/pebble.ts';
import { GTUBE, message, send, spamConfig } from '../harness/rspamd.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { authenticatedSubmission, envelope, RawSmtp } from '../harness/smtp-client.ts';
import { PASSWORD } from '../harness/submit.ts';

interface Seen {
  readonly headers: http.IncomingHttpHeaders;
  readonly raw: readonly string[];
  readonly body: Buffer;
}

/** An HTTP peer that records each request and answers with `answer()`'s status and body. */
async function fakeRspamd(answer: () => { status: number; body: string }) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, raw: req.rawHeaders, body: Buffer.concat(chunks) });
      const a = answer();
      res.writeHead(a.status, { 'Content-Type': 'application/json' });
      res.end(a.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Runs `fn` with a fake rspamd, closed after. */
async function withFake(
  answer: () => { status: number; body: string },
  fn: (fake: Awaited<ReturnType<typeof fakeRspamd>>) => Promise<void>,
): Promise<void> {
  const fake = await fakeRspamd(answer);
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

const NO_ACTION = JSON.stringify({
  action: 'no action',
  score: 0.5,
  required_score: 15,
  symbols: { A: { score: 0.5 } },
});

describe('spam stage: rspamd unreachable, slow or wrong', () => {
  const servers: TestServer[] = [];
  // The hygiene stage's lookups (SPF, DMARC) get quick "no such name" answers from loopback.
  let dns: TestDnsServer;
  before(async () => {
    dns = await startTestDns();
  });
  const start = async (url: string, more: string) => {
    const s = await startTestServer({ extra: spamConfig(dns.address, url, more), submission: true });
    servers.push(s);
    return s;
  };
  after(async () => {
    for (const s of servers) await s.stop();
    await dns?.close();
  });

  test('no rspamd, failure = "accept": delivered unscanned, with a warning in the log', async () => {
    const s = await start(`http://127.0.0.1:${await freePort()}`, 'failure = "accept"');
    const r = await send(s.port, message({ headers: 'X-Spam-Status: No, forged\r\n' }));
    assert.equal(r.code, 250, r.text);
    const line = await s.logged((l) => l.msg === 'spam scan failed, message accepted unscanned');
    assert.match(String(line.error), /ECONNREFUSED/);
    const [m] = await s.messages('bob@example.test');
    assert.doesNotMatch(m?.toString() ?? '', /X-Spam-Status/); // not scanned, and the forgery is gone
  });

  test('no rspamd, failure = "tempfail": 451 4.7.1', async () => {
    const s = await start(`http://127.0.0.1:${await freePort()}`, 'failure = "tempfail"');
    const r = await send(s.port, message());
    assert.equal(r.text, '451 4.7.1 Spam filter unavailable, try again later');
    assert.deepEqual(await s.newFiles('bob@example.test'), []);
  });

  test('an rspamd that never answers: the timeout ends the wait', async () => {
    const held = new Set<net.Socket>();
    const silent = net.createServer((c) => held.add(c)); // accepts, answers nothing
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const s = await start(`http://127.0.0.1:${port}`, 'failure = "tempfail"\ntimeout = "300ms"');
      const t0 = performance.now();
      const r = await send(s.port, message());
      assert.equal(r.text, '451 4.7.1 Spam filter unavailable, try again later');
      assert.ok(performance.now() - t0 < 5000);
      await s.logged((l) => l.msg === 'spam scan failed, message deferred' && l.error === 'rspamd timed out');
    } finally {
      for (const c of held) c.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test("a reply too large, not JSON, not rspamd's, or an HTTP error: the failure policy", async () => {
    const answers = [
      { status: 200, body: `{"action":"no action","score":0,"required_score":15,"pad":"${'x'.repeat(300_000)}"}` },
      { status: 200, body: 'pong' },
      { status: 200, body: '{"action":"reject"}' },
      { status: 500, body: '{}' },
    ];
    let i = 0;
    await withFake(
      () => answers[i++] ?? { status: 200, body: NO_ACTION },
      async (fake) => {
        const s = await start(fake.url, 'failure = "tempfail"');
        for (let n = 0; n < answers.length; n++) {
          const r = await send(s.port, message({ body: GTUBE }));
          assert.equal(r.text, '451 4.7.1 Spam filter unavailable, try again later', `answer ${n}`);
        }
        assert.equal((await send(s.port, message())).code, 250);
      },
    );
  });

  test("rspamd's headers: From, one Rcpt each, IP, Helo, Queue-ID, Settings-ID; the body as received", async () => {
    await withFake(
      () => ({ status: 200, body: NO_ACTION }),
      async (fake) => {
        const s = await start(fake.url, 'settings_id = "inbound"\nsubmission_settings_id = "outbound"');
        const data = message({ body: 'Body line one.\r\nBody line two.' });
        const c = await RawSmtp.connect(s.port);
        await envelope(c, 'sender@remote.example', ['bob@example.test', 'alice@example.test']);
        assert.equal((await c.cmd('DATA')).code, 354);
        c.write(`${data}.\r\n`);
        const r = await c.read();
        c.close();
        assert.equal(r.code, 250, r.text);
        const req = fake.seen.at(-1);
        assert.ok(req);
        assert.equal(req.headers.from, 'sender@remote.example');
        const rcpts = req.raw.filter((_, k) => k % 2 === 0 && req.raw[k]?.toLowerCase() === 'rcpt').length;
        assert.equal(rcpts, 2);
        assert.equal(req.headers.ip, '127.0.0.1');
        assert.equal(req.headers.helo, 'client.example');
        assert.equal(req.headers['settings-id'], 'inbound');
        assert.equal(req.headers.user, undefined);
        assert.equal(req.headers['tls-version'], undefined);
        assert.match(String(req.headers['queue-id']), new RegExp(`^${/message (\S+) delivered/.exec(r.text)?.[1]}$`));
        assert.equal(req.headers['content-length'], String(Buffer.byteLength(data)));
        assert.equal(req.body.toString('utf8'), data);
      },
    );
  });

  test('submission over TLS: User, TLS-Version and TLS-Cipher, the submission Settings-ID', async () => {
    await withFake(
      () => ({ status: 200, body: NO_ACTION }),
      async (fake) => {
        const s = await start(fake.url, 'settings_id = "inbound"\nsubmission_settings_id = "outbound"');
        const c = await authenticatedSubmission(s.submissionPort, 'alice@example.test', PASSWORD);
        assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
        assert.equal((await c.cmd('DATA')).code, 354);
        c.write('From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nhello\r\n.\r\n');
        assert.equal((await c.read()).code, 250);
        c.close();
        const req = fake.seen.at(-1);
        assert.equal(req?.headers.user, 'alice@example.test');
        assert.match(String(req?.headers['tls-version']), /^TLSv1\.[23]$/);
        assert.match(String(req?.headers['tls-cipher']), /^TLS_|^[A-Z0-9-]+$/);
        assert.equal(req?.headers['settings-id'], 'outbound');
        // Our verdict header never goes out with a user's mail.
        const [m] = await s.messages('bob@example.test');
        assert.doesNotMatch(m?.toString() ?? '', /X-Spam-Status/);
      },
    );
  });

  test('not scanned: a message over max_size, a client in trusted_networks', async () => {
    await withFake(
      () => ({ status: 200, body: NO_ACTION }),
      async (fake) => {
        const s = await start(fake.url, 'max_size = "1KB"');
        assert.equal((await send(s.port, message({ body: 'x'.repeat(2000) }))).code, 250);
        assert.equal(fake.seen.length, 0);
        assert.equal((await send(s.port, message())).code, 250);
        assert.equal(fake.seen.length, 1);
        const trusted = await startTestServer({
          extra: `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ntrusted_networks = ["127.0.0.0/8"]\n[spam]\nrspamd_url = "${fake.url}"\n`,
        });
        servers.push(trusted);
        assert.equal((await send(trusted.port, message())).code, 250);
        assert.equal(fake.seen.length, 1);
      },
    );
  });
});

describe('[spam] configuration', () => {
  test('rspamd_url must be http://', () => {
    assert.throws(() => parseConfigText('[spam]\nrspamd_url = "https://x:1"\n', 'x.toml'), /rspamd_url/);
    assert.throws(() => parseConfigText('[spam]\nfailure = "drop"\n', 'x.toml'), /failure/);
    const c = parseConfigText('[spam]\nrspamd_url = "http://127.0.0.1:11333"\nmax_size = "1MB"\n', 'x.toml');
    assert.equal(c.spam.max_size, 1024 * 1024);
    assert.equal(c.spam.failure, 'accept');
    assert.equal(parseConfigText('', 'x.toml').spam.rspamd_url, '');
  });
});
