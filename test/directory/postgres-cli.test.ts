// `arcline` commands against PostgreSQL ([database] url): the CLI of one node changes what
// every node sees (issue #18). A real process, a temp config, a database of its own.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../src/core/log.ts';
import { verifyPasswordHash } from '../../src/directory/password.ts';
import { PostgresDirectory } from '../../src/directory/postgres.ts';
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
  await writeFile(config, `${TEST_CONFIG(dir)}\n[database]\nurl = "${t.url}"\n`);
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
  node.close();
});
