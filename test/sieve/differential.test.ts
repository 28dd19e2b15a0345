// Differential test against Pigeonhole's compiler (Debian dovecot-sieve, /usr/bin/sievec):
// for every script of test/fixtures/sieve/{valid,invalid}/ our verdict (checkScript, and the
// CLI `arcline sieve check`) equals the directory it lies in and equals sievec's. sievec runs
// as this user with a private HOME and an empty config (-c /dev/null); vacation-seconds is
// off by default in Pigeonhole and enabled with -x. ereject is not in Pigeonhole 0.5 (Debian
// 12), so the corpus has no script requiring it.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { checkScript } from '../../src/sieve/validate.ts';

const run = promisify(execFile);
const SIEVEC = '/usr/bin/sievec';
const corpus = join(import.meta.dirname, '../fixtures/sieve');
const home = mkdtempSync(join(tmpdir(), 'arcline-sievec-'));
after(() => rmSync(home, { recursive: true, force: true }));

const scripts = (['valid', 'invalid'] as const).flatMap((dir) =>
  readdirSync(join(corpus, dir))
    .filter((f) => f.endsWith('.sieve'))
    .sort()
    .map((f) => ({ dir, name: f, path: join(corpus, dir, f) })),
);

async function sievec(path: string, out: string): Promise<{ ok: boolean; output: string }> {
  try {
    await run(SIEVEC, ['-c', '/dev/null', '-x', '+vacation-seconds', path, out], {
      env: { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin' },
      timeout: 10_000,
    });
    return { ok: true, output: '' };
  } catch (e) {
    const err = e as { code?: unknown; stderr?: string };
    if (typeof err.code !== 'number') throw e; // not started, killed: a broken setup, not a verdict
    return { ok: false, output: err.stderr ?? '' };
  }
}

async function pool<T, R>(items: readonly T[], width: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return results;
}

test('the corpus has at least 60 scripts, valid and invalid', () => {
  assert.ok(scripts.length >= 60, `${scripts.length} scripts`);
  assert.ok(scripts.filter((s) => s.dir === 'valid').length >= 30);
  assert.ok(scripts.filter((s) => s.dir === 'invalid').length >= 30);
});

test('our verdict equals the corpus directory and sievec', async () => {
  const verdicts = await pool(scripts, 8, async (s, i) => ({
    s,
    theirs: await sievec(s.path, join(home, `${i}.svbin`)),
  }));
  const disagreements: string[] = [];
  for (const { s, theirs } of verdicts) {
    const ours = checkScript(readFileSync(s.path));
    const expected = s.dir === 'valid';
    if (ours.ok !== expected)
      disagreements.push(`${s.dir}/${s.name}: ours ${ours.ok ? 'valid' : `invalid (${ours.errors[0]?.message})`}`);
    if (theirs.ok !== ours.ok)
      disagreements.push(
        `${s.dir}/${s.name}: sievec ${theirs.ok ? 'valid' : `invalid (${theirs.output.split('\n')[0]})`}, ours ${ours.ok ? 'valid' : 'invalid'}`,
      );
    // Semantic errors: both name the same first line (syntax errors at the end of an
    // unterminated string or comment differ: sievec names where the scan stopped).
    const m = /line (\d+): error/.exec(theirs.output);
    if (!theirs.ok && ours.script !== null && m && ours.errors[0] && Number(m[1]) !== ours.errors[0].line)
      disagreements.push(`${s.dir}/${s.name}: sievec error at line ${m[1]}, ours at line ${ours.errors[0].line}`);
  }
  assert.deepEqual(disagreements, []);
});

test('arcline sieve check: ok and exit 0, errors with line numbers and exit 1, usage exit 2', async () => {
  const cli = join(import.meta.dirname, '../../bin/arcline.js');
  const node = process.execPath;
  const good = join(corpus, 'valid/05-if-elsif-else.sieve');
  const okRun = await run(node, [cli, 'sieve', 'check', good]);
  assert.equal(okRun.stdout, 'ok\n');
  const bad = join(corpus, 'invalid/06-require-not-first.sieve');
  const badRun = await run(node, [cli, 'sieve', 'check', bad]).then(
    () => assert.fail('exit 0 for an invalid script'),
    (e: { code: number; stdout: string }) => e,
  );
  assert.equal(badRun.code, 1);
  assert.match(
    badRun.stdout,
    /06-require-not-first\.sieve: line 2: error: require commands can only be placed at top level/,
  );
  const usage = await run(node, [cli, 'sieve', 'frob']).then(
    () => assert.fail('exit 0 for a usage error'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(usage.code, 2);
});
