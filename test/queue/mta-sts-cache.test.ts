// The PolicyCache contract (queue/mta-sts-cache.ts), run against both sides: the JSON file under
// {state} and the PostgreSQL table of a cluster. A policy put is read back by a new instance
// (a restart, another node), a newer one replaces it, expired ones are not kept.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type CachedPolicy,
  FilePolicyCache,
  type PolicyCache,
  PostgresPolicyCache,
} from '../../src/queue/mta-sts-cache.ts';
import { freshDatabaseForFile } from '../harness/postgres.ts';

interface Side {
  /** A new instance over the same storage (a restart, another node). */
  open(): Promise<PolicyCache>;
}

function policy(id: string, expiresIn = 86_400_000): CachedPolicy {
  return {
    id,
    mode: 'enforce',
    mx: ['mx.example.test', '*.example.net'],
    maxAge: 86_400,
    expires: Date.now() + expiresIn,
  };
}

function runContract(name: string, side: () => Promise<Side>): void {
  describe(`PolicyCache contract: ${name}`, () => {
    test('a policy put is read back by another instance', async () => {
      const s = await side();
      const a = await s.open();
      assert.equal(await a.get('example.test'), null);
      const p = policy('abc1');
      await a.put('example.test', p);
      assert.deepEqual(await a.get('example.test'), p);
      await a.close();
      const b = await s.open();
      assert.deepEqual(await b.get('example.test'), p);
      await b.close();
    });

    test('a new policy for the domain replaces the old one', async () => {
      const s = await side();
      const a = await s.open();
      await a.put('example.test', policy('one'));
      await a.put('example.test', policy('two'));
      await a.put('other.test', policy('x'));
      const b = await s.open();
      assert.equal((await b.get('example.test'))?.id, 'two');
      assert.equal((await b.get('other.test'))?.id, 'x');
      await a.close();
      await b.close();
    });

    test('expired policies are dropped when another is saved', async () => {
      const s = await side();
      const a = await s.open();
      await a.put('old.test', policy('old', -1000));
      await a.put('new.test', policy('new'));
      const b = await s.open();
      assert.equal(await b.get('old.test'), null);
      assert.equal((await b.get('new.test'))?.id, 'new');
      await a.close();
      await b.close();
    });
  });
}

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

runContract('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-stscache-'));
  dirs.push(dir);
  return { open: () => FilePolicyCache.open(dir) };
});

runContract('postgres', async () => {
  const t = await freshDatabaseForFile();
  return { open: async () => PostgresPolicyCache.open(await t.open()) };
});

test('file: a damaged cache file is reported and treated as empty', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-stscache-'));
  dirs.push(dir);
  await writeFile(join(dir, 'mta-sts-policies.json'), '{not json');
  const warnings: string[] = [];
  const c = await FilePolicyCache.open(dir, (m) => warnings.push(m));
  assert.equal(await c.get('example.test'), null);
  assert.equal(warnings.length, 1);
});
