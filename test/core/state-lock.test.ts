// The server's lock on its state directory (core/state-lock.ts): held, it refuses a second
// holder and shows as held to other processes; it goes with its process, kill -9 included.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { lockState, stateLocked } from '../../src/core/state-lock.ts';

const MODULE = new URL('../../src/core/state-lock.ts', import.meta.url).href;
let dir: string;
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `code` (with the module as `m`) in another Node process. */
function node(code: string) {
  const child = spawn(
    process.execPath,
    [
      '--disable-warning=ExperimentalWarning',
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(MODULE)}); ${code}`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

test('one holder at a time, seen from other processes, released by close and by kill -9', async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-lock-'));
  const state = join(dir, 'state');
  assert.equal(stateLocked(state), false); // no lock file yet
  const lock = lockState(state);
  assert.deepEqual(await readdir(state), ['arcline.lock']); // no journal left beside it
  assert.throws(
    () => lockState(state),
    /^ArclineError: another arcline server is running on .*\/state \(it holds .*\/arcline\.lock\)$/,
  );
  const other = node(`console.log(m.stateLocked(${JSON.stringify(state)}))`);
  assert.equal(await other.exited, 0);
  assert.equal(other.out(), 'true\n');
  lock.release();
  assert.equal(stateLocked(state), false);

  // Another process takes it and is killed with SIGKILL: the lock goes with it.
  const holder = node(`m.lockState(${JSON.stringify(state)}); console.log('held'); setInterval(() => {}, 1000);`);
  await new Promise<void>((resolve) => holder.child.stdout.on('data', () => resolve()));
  assert.equal(holder.out(), 'held\n');
  assert.equal(stateLocked(state), true);
  holder.child.kill('SIGKILL');
  await holder.exited;
  assert.equal(stateLocked(state), false);
  lockState(state).release();
});
