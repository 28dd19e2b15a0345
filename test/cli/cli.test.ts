// The `arcline` command as users run it: a real process, a temp config, real files.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { runCli } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';

describe('arcline CLI', () => {
  let dir: string;
  let config: string;
  const cli = (args: string[], stdin?: string) =>
    runCli(['--config', config, ...args], stdin === undefined ? {} : { stdin });
  const ok = async (args: string[], stdin?: string) => {
    const r = await cli(args, stdin);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** A refused command: exit 1, one clear line, and nothing changed. */
  const refused = async (args: string[], pattern: RegExp, stdin = 'pw\n') => {
    const r = await cli(args, stdin);
    assert.equal(r.code, 1, `${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1);
  };
  const mailbox = (domain: string, user: string) => join(dir, 'mail', domain, user);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-cli-'));
    config = join(dir, 'arcline.toml');
    await writeFile(config, TEST_CONFIG(dir));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('domain add / list / del, with IDN and bad input', async () => {
    assert.equal(await ok(['domain', 'add', 'Example.TEST']), 'added domain example.test\n');
    assert.equal(await ok(['domain', 'add', 'bücher.example']), 'added domain xn--bcher-kva.example\n');
    await refused(['domain', 'add', 'example.test'], /^arcline: domain example\.test already exists$/m);
    await refused(['domain', 'add', 'not_a domain'], /invalid domain name/);
    assert.match(
      await ok(['domain', 'list']),
      /^DOMAIN +USERS +ALIASES +CATCH-ALL\nexample\.test +0 +0 +-\nxn--bcher-kva\.example +0 +0 +-\n$/,
    );
    await ok(['domain', 'del', 'bücher.example']);
    await refused(['domain', 'del', 'bücher.example'], /no domain/);
  });

  test('--version, -V and version print the version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    for (const args of [['--version'], ['-V'], ['version']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `arcline ${version}\n`);
    }
  });

  test('domain del retires its DKIM keys: a domain added again gets new ones', async () => {
    await ok(['domain', 'add', 'keys.test']);
    const first = await ok(['dkim', 'list', 'keys.test']);
    assert.match(first, /\._domainkey\.keys\.test\. 3600 IN TXT/);
    const del = await ok(['domain', 'del', 'keys.test']);
    const kept = /kept in (\S+);/.exec(del)?.[1];
    assert.ok(kept, del);
    assert.ok(
      (await readdir(kept)).some((f) => f.endsWith('.pem')),
      'the old key is kept aside',
    );
    await ok(['domain', 'add', 'keys.test']);
    const second = await ok(['dkim', 'list', 'keys.test']);
    assert.match(second, /\._domainkey\.keys\.test\. 3600 IN TXT/);
    assert.notEqual(second, first, 'a new key, not the old one');
    await ok(['domain', 'del', 'keys.test']);
  });

  test('dns-records warns when the hostname is not fully qualified, and when no HTTPS serves MTA-STS', async () => {
    const short = join(dir, 'short.toml');
    await writeFile(short, TEST_CONFIG(dir).replace('hostname = "mx.test.example"', 'hostname = "vm"'));
    await ok(['domain', 'add', 'short.test']);
    const r = await runCli(['--config', short, 'dns-records', 'short.test']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: the hostname "vm" is not fully qualified/);
    assert.match(r.stdout, /MX 10 vm\./);
    const fq = await cli(['dns-records', 'short.test']);
    assert.doesNotMatch(fq.stderr, /hostname/);
    // No HTTPS listener in the test config: the _mta-sts record would point at nothing yet.
    assert.match(fq.stderr, /warning: \[http\] tls_listen is off, so the MTA-STS policy is not served/);
    await ok(['domain', 'del', 'short.test']);
  });

  test('user add with --password-stdin creates the Maildir; bad input changes nothing', async () => {
    assert.equal(
      await ok(['user', 'add', 'alice@example.test', '--password-stdin', '--quota', '1GB'], 'pw-alice\n'),
      'added user alice@example.test\n',
    );
    assert.ok((await stat(join(mailbox('example.test', 'alice'), 'new'))).isDirectory());
    assert.ok((await stat(join(mailbox('example.test', 'alice'), '.Sent', 'cur'))).isDirectory());
    await refused(['user', 'add', 'alice@example.test', '--password-stdin'], /already exists/);
    await refused(['user', 'add', 'bob@nowhere.test', '--password-stdin'], /no domain nowhere\.test/);
    await refused(['user', 'add', '../evil@example.test', '--password-stdin'], /invalid user address/);
    await refused(['user', 'add', 'a/b@example.test', '--password-stdin'], /invalid user address/);
    await refused(['user', 'add', 'bob@example.test', '--password-stdin'], /no password on standard input/, '');
    const noTty = await cli(['user', 'add', 'bob@example.test'], '');
    assert.equal(noTty.code, 1);
    assert.match(noTty.stderr, /pass the password with --password-stdin/);
    const badQuota = await cli(['user', 'add', 'bob@example.test', '--password-stdin', '--quota', 'lots'], 'pw\n');
    assert.equal(badQuota.code, 2);
    assert.match(badQuota.stderr, /not a size: lots/);
    assert.match(
      await ok(['user', 'list']),
      /^USER +USED +QUOTA +CREATED\nalice@example\.test +0B +1GB +\d{4}-\d\d-\d\dT[\d:]+Z\n$/,
    );
    await assert.rejects(stat(mailbox('example.test', 'bob')));
  });

  test('user add --hash-stdin imports a Dovecot hash that then verifies', async () => {
    const hash =
      '{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1';
    await ok(['user', 'add', 'dove@example.test', '--hash-stdin'], `${hash}\n`);
    await refused(
      ['user', 'add', 'plain@example.test', '--hash-stdin'],
      /unsupported password hash/,
      '{PLAIN}secret\n',
    );
    const { openSqliteDirectory } = await import('../../src/directory/sqlite.ts');
    const { silentLogger } = await import('../../src/core/log.ts');
    const dir2 = openSqliteDirectory({ path: join(dir, 'state', 'arcline.db'), bcryptCost: 4, log: silentLogger() });
    const { verifyPasswordHash } = await import('../../src/directory/password.ts');
    const stored = (await dir2.passwordHash('dove@example.test' as AccountId)) ?? '';
    assert.ok(await verifyPasswordHash(stored, 'Hello world!'));
    assert.equal(await verifyPasswordHash(stored, 'hello world!'), false);
    dir2.close();
    await ok(['user', 'del', 'dove@example.test', '--purge']);
  });

  test('user passwd / quota / list DOMAIN', async () => {
    await ok(['user', 'passwd', 'alice@example.test', '--password-stdin'], 'new-pw\n');
    await refused(['user', 'passwd', 'nobody@example.test', '--password-stdin'], /no user nobody@example\.test/);
    await ok(['user', 'quota', 'alice@example.test', '500MB']);
    assert.match(await ok(['user', 'list', 'example.test']), /alice@example\.test +\S+ +500MB/);
    await ok(['user', 'quota', 'alice@example.test', 'none']);
    assert.match(await ok(['user', 'list']), /alice@example\.test +\S+ +unlimited/);
  });

  test('alias add / list / del and catchall set', async () => {
    await ok(['user', 'add', 'bob@example.test', '--password-stdin'], 'pw-bob\n');
    assert.equal(
      await ok([
        'alias',
        'add',
        'team@example.test',
        'alice@example.test',
        'Bob@Example.test',
        'friend@remote.example',
      ]),
      'team@example.test -> alice@example.test, bob@example.test, friend@remote.example\n',
    );
    await refused(['alias', 'add', 'x@remote.example', 'alice@example.test'], /no domain remote\.example/);
    await refused(['alias', 'add', 'x@example.test', 'not-an-address'], /invalid destination/);
    assert.match(
      await ok(['alias', 'list']),
      /team@example\.test +alice@example\.test, bob@example\.test, friend@remote\.example/,
    );
    await ok(['alias', 'del', 'team@example.test', 'friend@remote.example']);
    assert.match(
      await ok(['alias', 'list', 'example.test']),
      /team@example\.test +alice@example\.test, bob@example\.test\n$/,
    );
    await ok(['alias', 'del', 'team@example.test']);
    // What is left are the role aliases made with the domain's first user (RFC 5321 §4.5.1, RFC 2142).
    assert.equal(
      await ok(['alias', 'list']),
      'ALIAS                    DESTINATIONS\nabuse@example.test       alice@example.test\npostmaster@example.test  alice@example.test\n',
    );
    await ok(['catchall', 'set', 'example.test', 'alice@example.test']);
    assert.match(await ok(['domain', 'list']), /example\.test +2 +2 +alice@example\.test/);
    await ok(['catchall', 'set', 'example.test', 'none']);
    await refused(['catchall', 'set', 'nowhere.test', 'alice@example.test'], /no domain/);
    await refused(['domain', 'del', 'example.test'], /still has 2 user\(s\)/);
  });

  test('user del keeps the mail unless --purge', async () => {
    await ok(['user', 'add', 'carol@example.test', '--password-stdin'], 'pw\n');
    await writeFile(join(mailbox('example.test', 'carol'), 'new', 'keepme'), 'mail');
    assert.match(await ok(['user', 'del', 'carol@example.test']), /mail kept on disk/);
    assert.ok((await stat(join(mailbox('example.test', 'carol'), 'new', 'keepme'))).isFile());
    await ok(['user', 'add', 'carol@example.test', '--password-stdin'], 'pw\n');
    await ok(['user', 'del', 'carol@example.test', '--purge']);
    await assert.rejects(stat(mailbox('example.test', 'carol')));
    await refused(['user', 'del', 'carol@example.test'], /no user/);
  });

  test('usage errors exit 2 with the usage', async () => {
    for (const args of [
      ['frob'],
      ['user'],
      ['domain', 'add'],
      ['user', 'add', 'a@example.test', '--bogus'],
      ['domain', 'add', 'a.test', 'b.test'],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^arcline: .+\nusage: arcline/);
    }
    const help = await runCli(['help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: arcline/);
  });
});
