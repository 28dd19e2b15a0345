// `arcline` commands against PostgreSQL ([database] url): the CLI of one node changes what
// every node sees (issue #18). A real process, a temp config, a database of its own.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PostgresAccessStore } from '../../src/admin/access-pg.ts';
import { silentLogger } from '../../src/core/log.ts';
import { verifyPasswordHash } from '../../src/directory/password.ts';
import { PostgresDirectory } from '../../src/directory/postgres.ts';
import { PostgresDkimKeys } from '../../src/hygiene/dkim-keys-pg.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';
import { runCli } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';

let dir: string;
let config: string;
let t: TestDatabase;

before(async () => {
  t = await freshDatabase();
  dir = await mkdtemp(join(tmpdir(), 'arcline-pgcli-'));
  config = join(dir, 'arcline.toml');
  await writeFile(
    config,
    `${TEST_CONFIG(dir)}\n[database]\nurl = "${t.url}"\n[cluster]\nshared_dir = "${dir}/shared"\n`,
  );
});
after(async () => {
  await t.drop();
  await rm(dir, { recursive: true, force: true });
});

const ok = async (args: string[], stdin?: string) => {
  const r = await runCli(['--config', config, ...args], stdin === undefined ? {} : { stdin });
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

test('postgres: arcline domain/user/alias commands write the shared directory a running node sees', async () => {
  const node = await PostgresDirectory.open({
    db: await t.open(),
    listen: { url: t.url, connectTimeoutMs: 5000, applicationName: 'arcline-test' },
    bcryptCost: 4,
    log: silentLogger(),
  });
  assert.equal(await ok(['domain', 'add', 'Example.TEST']), 'added domain example.test\n');
  await ok(['user', 'add', 'alice@example.test', '--password-stdin'], 'pw-alice\n');
  await ok(['alias', 'add', 'team@example.test', 'alice@example.test']);
  assert.match(await ok(['user', 'list']), /alice@example\.test/);
  const hash = await node.passwordHash('alice@example.test' as never);
  assert.ok(hash && (await verifyPasswordHash(hash, 'pw-alice')), 'the node checks the password the CLI set');
  await node.sync();
  const team = await node.resolveRecipient({ local: 'team', domain: 'example.test' as never });
  assert.deepEqual(team, { kind: 'deliver', accounts: ['alice@example.test'], remote: [] });
  // The admin API token and the DKIM key the CLI made live in the database too.
  const token = (await ok(['token', 'add', '--role', 'admin', '--name', 'ops'])).trim();
  const access = await PostgresAccessStore.open(await t.open());
  assert.deepEqual((await access.verify(token))?.role, { kind: 'admin' });
  assert.match((await access.auditLog({ limit: 1 }))[0]?.action ?? '', /token add/);
  const dkim = await PostgresDkimKeys.open(await t.open());
  const keys = await dkim.keys('example.test');
  assert.equal(keys.length, 1, 'domain add made a DKIM key in the database');
  assert.match(await ok(['dkim', 'list']), new RegExp(`^${keys[0]?.selector}\\._domainkey\\.example\\.test`, 'm'));
  node.close();
});

test('postgres: an unreachable database fails the command at once, with the URL but not its password', async () => {
  const bad = join(dir, 'bad.toml');
  await writeFile(bad, `${TEST_CONFIG(dir)}\n[database]\nurl = "postgres://arcline:s3cret@127.0.0.1:1/none"\n`);
  const start = performance.now();
  const r = await runCli(['--config', bad, 'domain', 'list']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot reach PostgreSQL at postgres:\/\/arcline:\*\*\*@127\.0\.0\.1:1\/none/);
  assert.doesNotMatch(r.stderr, /s3cret/);
  assert.ok(performance.now() - start < 8000);
});
