// Hostile ManageSieve clients against the real server (src/managesieve/): an oversized literal
// refused before its bytes, an overlong line, errors until BYE, login throttling shared with
// IMAP, the deadlines, many clients at once; and, on a session that is not on loopback,
// AUTHENTICATE refused before STARTTLS (ENCRYPT-NEEDED, the rule of IMAP's LOGINDISABLED).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Authenticator } from '../../src/auth/authenticator.ts';
import type { AccountId } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import { Session } from '../../src/managesieve/session.ts';
import { CommandFramer } from '../../src/managesieve/wire.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { RawSieve } from './client.ts';

const PASSWORD = 'secret-password';

describe('hostile ManageSieve clients', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      extra:
        '[managesieve]\nlisten = ["127.0.0.1:0"]\nlogin_timeout = "2s"\ncommand_timeout = "1s"\nmax_connections_per_ip = 60\n[sieve]\nmax_script_size = "64KB"',
      auth: 'failure_delay = "0s"',
    });
  });
  after(() => s.stop());

  const loggedIn = async () => {
    const c = await RawSieve.connect(s.managesievePort);
    await c.reply(); // greeting
    assert.match((await c.login('alice@example.test', PASSWORD)).status, /^OK/);
    return c;
  };

  test('an oversized literal is refused when announced, before any of its bytes, then BYE', async () => {
    const c = await loggedIn();
    c.write('PUTSCRIPT "big" {70000+}\r\n');
    const r = await c.reply();
    assert.match(r.status, /^NO \(QUOTA\/MAXSIZE\)/);
    assert.match((await c.reply()).status, /^BYE/);
    await c.closedByServer();
    assert.deepEqual(await s.admin.sieve.list('alice@example.test' as AccountId), []);
  });

  test('a literal before login is bounded too; an overlong line is BYE', async () => {
    const pre = await RawSieve.connect(s.managesievePort);
    await pre.reply();
    pre.write('AUTHENTICATE "PLAIN" {100000+}\r\n');
    assert.match((await pre.reply()).status, /^NO \(QUOTA\/MAXSIZE\)/);
    await pre.closedByServer();
    const c = await RawSieve.connect(s.managesievePort);
    await c.reply();
    c.write(`NOOP "${'x'.repeat(20_000)}`);
    assert.match((await c.reply()).status, /^BYE "Line too long"/);
    await c.closedByServer();
  });

  test('a script right at the limit is accepted; HAVESPACE answers QUOTA/MAXSIZE above it', async () => {
    const c = await loggedIn();
    const body = Buffer.alloc(64 * 1024, 0x20);
    body.write('keep;', 0);
    const r = await c.command(
      Buffer.concat([Buffer.from(`PUTSCRIPT "edge" {${body.length}+}\r\n`), body, Buffer.from('\r\n')]),
    );
    assert.match(r.status, /^OK/);
    assert.match((await c.command('HAVESPACE "edge" 65537')).status, /^NO \(QUOTA\/MAXSIZE\)/);
    // A synchronizing literal ({n}, no "+") is read alike.
    assert.match((await c.command('PUTSCRIPT "sync" {5}\r\nkeep;')).status, /^OK/);
    assert.match((await c.command('DELETESCRIPT "edge"')).status, /^OK/);
    assert.match((await c.command('DELETESCRIPT "sync"')).status, /^OK/);
    assert.match((await c.command('DELETESCRIPT "sync"')).status, /^NO \(NONEXISTENT\)/);
    assert.match((await c.command('LOGOUT')).status, /^OK/);
    await c.closedByServer();
  });

  test('AUTHENTICATE "LOGIN" step by step (a literal answer too), UNAUTHENTICATE, "*" cancels', async () => {
    const c = await RawSieve.connect(s.managesievePort);
    await c.reply();
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    c.write('AUTHENTICATE "LOGIN"\r\n');
    assert.equal(await c.line(), `"${b64('Username:')}"`);
    c.write(`"${b64('alice@example.test')}"\r\n`);
    assert.equal(await c.line(), `"${b64('Password:')}"`);
    const pw = b64(PASSWORD);
    assert.match((await c.command(`{${pw.length}+}\r\n${pw}`)).status, /^OK "Logged in"/);
    assert.match((await c.command('CAPABILITY')).raw.toString(), /^"OWNER" "alice@example\.test"\r$/m);
    assert.match((await c.command('UNAUTHENTICATE')).status, /^OK/);
    assert.match((await c.command('LISTSCRIPTS')).status, /^NO "Authenticate first"/);
    c.write('AUTHENTICATE "PLAIN"\r\n');
    assert.equal(await c.line(), '""');
    assert.match((await c.command('"*"')).status, /^NO "Authentication canceled"/);
    assert.match((await c.command('NOOP "tag 1"')).status, /^OK \(TAG "tag 1"\) "Done"/);
    c.close();
  });

  test('unknown and malformed commands until BYE; commands before login refused', async () => {
    const c = await RawSieve.connect(s.managesievePort);
    await c.reply();
    assert.match((await c.command('LISTSCRIPTS')).status, /^NO "Authenticate first"/);
    let last = '';
    for (let i = 0; i < 20 && !last.startsWith('BYE'); i++) last = (await c.command('FROB "x')).status;
    assert.match(last, /^BYE "Too many errors"/);
    await c.closedByServer();
  });

  test('failed logins are throttled with IMAP’s (one Authenticator): delayed, then the owner still logs in', async () => {
    const c = await RawSieve.connect(s.managesievePort);
    await c.reply();
    for (let i = 0; i < 3; i++) assert.match((await c.login('bob@example.test', `wrong-${i}`)).status, /^NO/);
    await s.logged((l) => l.msg === 'auth failed' && l.service === 'managesieve' && l.user === 'bob@example.test');
    await s.logged((l) => l.msg === 'auth delayed' && l.service === 'managesieve');
    assert.match((await c.login('alice@example.test', PASSWORD)).status, /^OK/);
    c.close();
  });

  test('STARTTLS discards what was pipelined behind it in clear (no command injection)', async () => {
    const c = await RawSieve.connect(s.managesievePort);
    await c.reply();
    const b64 = Buffer.from(`\0alice@example.test\0${PASSWORD}`).toString('base64');
    // The injected AUTHENTICATE rides behind STARTTLS in the same segment.
    const caps = await c.startTlsWith(`STARTTLS\r\nAUTHENTICATE "PLAIN" "${b64}"\r\n`);
    assert.doesNotMatch(caps.raw.toString(), /"STARTTLS"/);
    assert.match((await c.command('LISTSCRIPTS')).status, /^NO "Authenticate first"/);
    c.close();
  });

  test("command_timeout runs from a command's first byte: a literal trickled in is cut off", async () => {
    const c = await loggedIn();
    c.write('PUTSCRIPT "slow" {100+}\r\nkeep;');
    const trickle = setInterval(() => c.write(' '), 200);
    try {
      assert.match((await c.reply()).status, /^BYE "Command took too long"/);
    } finally {
      clearInterval(trickle);
    }
    await c.closedByServer();
  });

  test('the login deadline ends a client that never logs in', async () => {
    const c = await RawSieve.connect(s.managesievePort);
    await c.reply();
    assert.match((await c.reply()).status, /^BYE "Took too long to log in"/);
    await c.closedByServer();
  });

  test('many clients at once: 60 concurrent sessions each store and read their script; the 61st is refused', async () => {
    const clients = await Promise.all(Array.from({ length: 60 }, () => loggedIn()));
    const extra = await RawSieve.connect(s.managesievePort);
    assert.match((await extra.reply()).status, /^BYE \(TRYLATER\) "Too many connections from your address"/);
    await extra.closedByServer();
    await Promise.all(
      clients.map(async (c, i) => {
        const body = `# client ${i}\r\nkeep;\r\n`;
        assert.match((await c.command(`PUTSCRIPT "c${i}" {${body.length}+}\r\n${body}`)).status, /^OK/);
        const got = await c.command(`GETSCRIPT "c${i}"`);
        assert.ok(got.raw.toString().includes(body));
        assert.match((await c.command('LOGOUT')).status, /^OK/);
      }),
    );
    assert.equal((await s.admin.sieve.list('alice@example.test' as AccountId)).length, 60);
  });
});

describe('a session off loopback without TLS', () => {
  test('offers no SASL mechanism and refuses AUTHENTICATE with ENCRYPT-NEEDED', async () => {
    const sent: string[] = [];
    const session = new Session({
      scripts: {} as never,
      authenticator: new Authenticator({
        directory: { loginName: () => null, passwordHash: async () => null },
        log: silentLogger(),
        hashing: { scheme: 'bcrypt', bcryptCost: 4 },
      }),
      log: silentLogger(),
      remoteAddress: '192.0.2.10',
      loopback: false,
      maxScriptBytes: 1024,
      secure: () => false,
      send: async (b) => {
        sent.push(b.toString());
      },
      startTls: async () => {},
    });
    const caps = session.capability().toString();
    assert.match(caps, /^"SASL" ""\r$/m);
    assert.match(caps, /^"STARTTLS"\r$/m);
    const f = new CommandFramer({ maxLineBytes: 1000, maxTokens: 5, literalLimit: () => 100, literalSlack: 0 });
    f.push(Buffer.from('AUTHENTICATE "PLAIN" "AGFsaWNlAHNlY3JldA=="\r\nAUTHENTICATE "LOGIN"\r\n'));
    for (let e = f.next(); e; e = f.next()) if (e.kind === 'command') await session.handle(e.tokens);
    assert.deepEqual(sent, [
      'NO (ENCRYPT-NEEDED) "Use STARTTLS first"\r\n',
      'NO (ENCRYPT-NEEDED) "Use STARTTLS first"\r\n',
    ]);
    assert.equal(session.state.kind, 'unauthenticated');
  });
});
