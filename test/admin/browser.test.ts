// The web admin in a real browser against the real server: Debian's chromium driven by
// playwright-core (test/harness/browser.ts), the SPA as `npm run build:admin` builds it, served at
// /admin/ by the server's [http] listener, talking to the real admin API with a token made by
// `arcline token add --role admin`. The flow (test/admin/flow.ts) adds a domain and a user,
// changes the password, adds an alias; here the new password is then checked where it matters:
// an IMAP LOGIN and POST /api/v1/login. UPDATE_SCREENSHOTS=1 rewrites docs/admin/*.png.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import { startBrowser, type TestBrowser } from '../harness/browser.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { runCli } from '../harness/process.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { submitter, waitUntil } from '../harness/submit.ts';
import { adminFlow } from './flow.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOMAIN = 'example.org';
const FIRST = 'first-password-1';
const NEW = 'second-password-2';
const QUEUED_TO = 'bob@remote.test';

/** `npm run build:admin`, always (about a second): a dist-admin/ left from an older checkout
 *  would test yesterday's app. The server reads the files when it starts, so this comes first. */
function buildAdmin(): void {
  const r = spawnSync(
    process.execPath,
    [`${ROOT}node_modules/vite/bin/vite.js`, 'build', '--config', `${ROOT}web-admin/vite.config.ts`],
    { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, `build:admin failed: ${r.stderr}`);
  assert.ok(existsSync(`${ROOT}dist-admin/index.html`));
}

async function imapLogin(s: TestServer, user: string, pass: string): Promise<boolean> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port: s.imapPort,
    secure: false,
    auth: { user, pass },
    logger: false,
    tls: { rejectUnauthorized: false },
  });
  try {
    await c.connect();
    await c.logout();
    return true;
  } catch {
    c.close();
    return false;
  }
}

async function apiLogin(base: string, username: string, password: string): Promise<number> {
  const r = await fetch(`${base}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  await r.body?.cancel();
  return r.status;
}

describe('web admin in chromium', () => {
  let dns: TestDnsServer;
  let server: TestServer;
  let browser: TestBrowser;
  let base: string;
  let token: string;

  before(async () => {
    buildAdmin();
    // The zone as far as the DNS check can see: the MX points here, nothing else is published.
    // remote.test's DNS fails, so mail to it waits in the queue.
    dns = await startTestDns([{ type: 'MX', name: DOMAIN, preference: 10, exchange: 'mx.test.example' }]);
    dns.failing.add('remote.test');
    server = await startTestServer({
      domains: ['example.test'],
      users: ['alice@example.test'],
      submission: true,
      auth: 'failure_delay = "0s"',
      extra: `[dns]\nservers = ["${dns.address}"]\n[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = []\n`,
    });
    base = `http://127.0.0.1:${server.server.http[0]?.port}`;
    const made = await runCli(['--config', server.configFile, 'token', 'add', '--role', 'admin', '--name', 'browser']);
    assert.equal(made.code, 0, made.stderr);
    token = made.stdout.trim().split('\n').at(-1) ?? '';
    assert.match(token, /^arc_\S+$/);
    await submitter(server.submissionPort).sendMail({
      from: 'alice@example.test',
      to: QUEUED_TO,
      subject: 'waits in the queue',
      text: 'hello',
    });
    await waitUntil('the message deferred', async () =>
      (await server.admin.queue.list()).some((m) =>
        m.recipients.some((r) => r.address === QUEUED_TO && r.attempts > 0),
      ),
    );
    browser = await startBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await dns?.close();
  });

  test('served at /admin/: index no-store, hashed assets immutable, CSP on both', async () => {
    const index = await fetch(`${base}/admin/users`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('cache-control'), 'no-store');
    assert.match(index.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const html = await index.text();
    const script = html.match(/src="(\/admin\/assets\/[^"]+\.js)"/)?.[1];
    assert.ok(script, html);
    assert.doesNotMatch(html, /<script>|<style>|style=/, 'no inline script or style');
    const js = await fetch(base + script);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    await js.body?.cancel();
  });

  test('log in with a token; add a domain and a user; change the password; it works', async () => {
    const user = await adminFlow(browser.page, {
      base,
      token,
      domain: DOMAIN,
      firstPassword: FIRST,
      newPassword: NEW,
      shots: process.env['UPDATE_SCREENSHOTS'] === '1',
      queuedTo: QUEUED_TO,
    });
    assert.deepEqual(browser.errors, [], 'no script error or CSP violation in the page');
    // What the browser did is in the directory: the user logs in with the new password only.
    assert.equal(await imapLogin(server, user, NEW), true);
    assert.equal(await imapLogin(server, user, FIRST), false);
    assert.equal(await apiLogin(base, user, NEW), 200);
    const domains = (await server.admin.directory.listDomains()).map((d) => d.name as string);
    assert.deepEqual(domains.sort(), [DOMAIN, 'example.test']);
  });

  test('a readonly token sees every page but no form that changes something', async () => {
    const made = await runCli(['--config', server.configFile, 'token', 'add', '--role', 'readonly']);
    assert.equal(made.code, 0, made.stderr);
    const page = browser.page;
    await page.evaluate(() => sessionStorage.clear());
    await page.goto(`${base}/admin/domains`);
    await page.getByLabel('API token', { exact: true }).fill(made.stdout.trim());
    await page.getByRole('button', { name: 'Log in with token' }).click();
    await page.getByRole('heading', { level: 1, name: 'Domains' }).waitFor();
    await page.getByRole('table', { name: 'Domains' }).getByRole('link', { name: DOMAIN }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add domain' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Delete' }).count(), 0);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Domain', { exact: true }).selectOption(DOMAIN);
    await page.getByRole('rowheader', { name: `carol@${DOMAIN}` }).waitFor();
    assert.equal(await page.getByRole('button', { name: /Add user|Change password|Delete/ }).count(), 0);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Networks' }).click();
    await page.getByText('No bans in force.').waitFor();
    assert.equal(await page.getByRole('button', { name: /Add network|Remove|Lift/ }).count(), 0);
    assert.deepEqual(browser.errors, []);
  });
});
