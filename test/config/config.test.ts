import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configPath, loadConfig, parseConfigText } from '../../src/config/load.ts';
import { isArclineError } from '../../src/core/errors.ts';

function configError(text: string): string {
  try {
    parseConfigText(text, '/etc/arcline.toml');
  } catch (e) {
    assert.ok(isArclineError(e, 'CONFIG'), String(e));
    return e.message;
  }
  assert.fail(`accepted: ${text}`);
}

test('embedded defaults: unprivileged loopback ports and ./data', () => {
  const { config, file } = loadConfig(null);
  assert.equal(file, null);
  assert.deepEqual(config.smtp.listen, ['127.0.0.1:2525']);
  assert.deepEqual(config.submission.listen, ['127.0.0.1:2587']);
  assert.deepEqual(config.submission.tls_listen, ['127.0.0.1:2465']);
  assert.deepEqual(config.imap.listen, ['127.0.0.1:2143']);
  assert.deepEqual(config.imap.tls_listen, ['127.0.0.1:2993']);
  assert.equal(config.storage.maildir, join(process.cwd(), 'data/mail'));
  assert.equal(config.storage.state, join(process.cwd(), 'data/state'));
  assert.equal(config.smtp.max_message_size, 50 * 1024 * 1024);
});

test('the documented example config parses; relative paths are relative to the file', () => {
  const c = parseConfigText(
    `hostname = "mx.example.test"
[storage]
maildir = "mail"
state = "/var/lib/arcline"
[smtp]
listen = ["0.0.0.0:25", "[::]:25"]
max_message_size = "25MB"
[submission]
listen = [":587"]
tls_listen = [":465"]
[imap]
listen = [":143"]
tls_listen = [":993"]
[tls]
cert = "/etc/ssl/fullchain.pem"
key = "/etc/ssl/privkey.pem"
[dns]
servers = ["127.0.0.1:5353"]
`,
    '/etc/arcline/arcline.toml',
  );
  assert.equal(c.hostname, 'mx.example.test');
  assert.equal(c.storage.maildir, '/etc/arcline/mail');
  assert.equal(c.storage.state, '/var/lib/arcline');
  assert.equal(c.smtp.max_message_size, 25 * 1024 * 1024);
  assert.equal(c.tls.cert, '/etc/ssl/fullchain.pem');
});

test('errors name the file, the key path and what is wrong', () => {
  assert.equal(configError('bogus = 1'), '/etc/arcline.toml: bogus: unknown key');
  assert.equal(configError('[smtp]\nlisten_on = []'), '/etc/arcline.toml: smtp.listen_on: unknown key');
  assert.equal(configError('[smtp]\nlisten = "x"'), '/etc/arcline.toml: smtp.listen: expected array, got string');
  assert.match(
    configError('[smtp]\nlisten = ["nope"]'),
    /^\/etc\/arcline\.toml: smtp\.listen\.0: not a listen address/,
  );
  assert.match(configError('[smtp]\nmax_message_size = "fifty"'), /smtp\.max_message_size: not a size: "fifty"/);
  assert.match(configError('[smtp]\nmax_recipients = 0'), /smtp\.max_recipients: /);
  assert.match(configError('[tls]\ncert = "/a.pem"'), /tls: cert and key must be given together/);
  assert.match(configError('hostname = "bad host"'), /hostname: not a host name/);
  assert.match(configError('[log]\nlevel = "loud"'), /log\.level: /);
  assert.match(configError('hostname = '), /^\/etc\/arcline\.toml:1:\d+: TOML syntax error/);
});

test('a missing config file is a clear error; ARCLINE_CONFIG names the file', async () => {
  assert.throws(
    () => loadConfig('/nonexistent/arcline.toml'),
    /\/nonexistent\/arcline\.toml: cannot read the config file \(ENOENT\)/,
  );
  assert.equal(configPath(undefined, { ARCLINE_CONFIG: '/x.toml' }), '/x.toml');
  assert.equal(configPath('/y.toml', { ARCLINE_CONFIG: '/x.toml' }), '/y.toml');
  assert.equal(configPath(undefined, {}), null);
  const dir = await mkdtemp(join(tmpdir(), 'arcline-cfg-'));
  const f = join(dir, 'a.toml');
  await writeFile(f, 'hostname = "mx.a.test"\n');
  assert.equal(loadConfig(f).config.hostname, 'mx.a.test');
});

test('docs/configuration.md: the embedded defaults written as a file are the embedded defaults', async () => {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const block = /## The embedded defaults as a file\s+```toml\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(block, 'the block is in the doc');
  const text = block.replace('hostname = "<this machine\'s host name>"', `hostname = "${hostname()}"`);
  const fromDoc = parseConfigText(text, join(process.cwd(), 'doc.toml'));
  const { config } = loadConfig(null);
  assert.deepEqual(fromDoc, config);
});

test('[delivery] keys: relay must be host:port, the password file needs a user and is made absolute', () => {
  const f = '/etc/arcline/arcline.toml';
  assert.throws(
    () => parseConfigText('[delivery]\nrelay = "smtp.example.org"\n', f),
    /delivery\.relay: not "host:port"/,
  );
  assert.throws(
    () => parseConfigText('[delivery]\nrelay_password_file = "pw"\n', f),
    /delivery: relay_password_file needs relay_username/,
  );
  const c = parseConfigText(
    '[delivery]\nrelay = "[2001:db8::1]:587"\nrelay_username = "u"\nrelay_password_file = "pw"\nretry_schedule = ["10s", "1m"]\n',
    f,
  );
  assert.equal(c.delivery.relay_password_file, '/etc/arcline/pw');
  assert.deepEqual(c.delivery.retry_schedule, [10_000, 60_000]);
  assert.throws(() => parseConfigText('[delivery]\nretry_schedule = []\n', f), /delivery\.retry_schedule/);
  assert.throws(() => parseConfigText('[delivery]\nmx_tls = "dane"\n', f), /delivery\.mx_tls/);
});

test('[mta_sts_outbound]: on by default, ca_file relative to the config file', () => {
  const f = '/etc/arcline/arcline.toml';
  const d = parseConfigText('', f).mta_sts_outbound;
  assert.deepEqual(d, { enabled: true, fetch_timeout: 60_000, ca_file: '', policy_port: 443 });
  const c = parseConfigText('[mta_sts_outbound]\nca_file = "ca.pem"\nfetch_timeout = "10s"\n', f);
  assert.equal(c.mta_sts_outbound.ca_file, '/etc/arcline/ca.pem');
  assert.equal(c.mta_sts_outbound.fetch_timeout, 10_000);
  assert.throws(() => parseConfigText('[mta_sts_outbound]\npolicy_port = 0\n', f), /mta_sts_outbound\.policy_port/);
});

test('[http], [acme] and [mta_sts]: defaults, and ACME excluding [tls] cert/key', () => {
  const { config } = loadConfig(null);
  assert.deepEqual(config.http.listen, ['127.0.0.1:8080']);
  assert.deepEqual(config.http.tls_listen, ['127.0.0.1:8443']);
  assert.equal(config.acme.directory_url, '');
  assert.equal(config.acme.renew_before, 30 * 86_400_000);
  assert.deepEqual(config.acme.challenges, ['tls-alpn-01', 'http-01']);
  assert.equal(config.mta_sts.mode, 'testing');
  assert.equal(config.mta_sts.max_age, 7 * 86_400_000);
  const c = parseConfigText(
    '[acme]\ndirectory_url = "https://acme.test/dir"\nemail = "ops@example.test"\nchallenges = ["http-01"]\n[mta_sts]\nmode = "enforce"\nmx = ["*.backup.test"]\n',
    '/etc/arcline.toml',
  );
  assert.deepEqual(c.acme.challenges, ['http-01']);
  assert.deepEqual(c.mta_sts.mx, ['*.backup.test']);
  assert.match(
    configError('[acme]\ndirectory_url = "https://acme.test/dir"\n[tls]\ncert = "/a.pem"\nkey = "/b.pem"'),
    /acme\.directory_url: \[acme\] directory_url and \[tls\] cert\/key exclude each other/,
  );
  assert.match(configError('[acme]\ndirectory_url = "ftp://x"'), /acme\.directory_url: not an http\(s\) URL/);
  assert.match(
    configError('[acme]\ndirectory_url = "https://acme.test/dir"\n[http]\ntls_listen = []'),
    /acme\.challenges: every challenge type needs its listener/,
  );
  parseConfigText(
    '[acme]\ndirectory_url = "https://a.test/d"\nchallenges = ["http-01"]\n[http]\ntls_listen = []',
    '/x.toml',
  );
  assert.match(configError('[acme]\nchallenges = ["dns-01"]'), /acme\.challenges\.0/);
  assert.match(configError('[mta_sts]\nmode = "strict"'), /mta_sts\.mode/);
  assert.match(configError('[mta_sts]\nmax_age = "400d"'), /mta_sts\.max_age: max_age must be between/);
});
