// Secrets never reach a log line (core/log.ts censorSecrets, the backstop behind "never log a
// secret"), at the top level, one level down and in child bindings; other fields are untouched
// and the caller's objects are not changed.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/core/log.ts';

test('password and pass are censored at the top level, one level down and in bindings', async () => {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const log = createLogger({ level: 'info', format: 'json', destination: destination as never });
  const auth = { user: 'bob', password: 'hunter2' };
  log.info({ password: 'p1', pass: 'p2', user: 'bob', auth, n: 1, list: ['password'] }, 'login');
  log.child({ conn: 'c1', pass: 'p3' }).info({ nested: { pass: 'p4', keep: 'yes' } }, 'child');
  log.info('no fields');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(auth, { user: 'bob', password: 'hunter2' }, "the caller's object is not changed");
  const [a, b, c] = lines;
  assert.equal(a?.password, '[redacted]');
  assert.equal(a?.pass, '[redacted]');
  assert.deepEqual(a?.auth, { user: 'bob', password: '[redacted]' });
  assert.deepEqual([a?.user, a?.n, a?.list, a?.msg], ['bob', 1, ['password'], 'login']);
  assert.equal(b?.conn, 'c1');
  assert.equal(b?.pass, '[redacted]');
  assert.deepEqual(b?.nested, { pass: '[redacted]', keep: 'yes' });
  assert.equal(c?.msg, 'no fields');
  assert.ok(!JSON.stringify(lines).match(/hunter2|p[1-4]"/), JSON.stringify(lines));
});
