// The OpenAPI 3.1 document of the admin API: served at /api/openapi.json by the real server,
// identical to the published docs/openapi.json (regenerate with `npm run openapi`), and valid
// for `redocly lint` (redocly.yaml: the recommended rules, zero warnings). Redocly runs with
// its telemetry and update check off, on a local file: nothing leaves the machine.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openApiText } from '../../src/api/app.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let s: TestServer;
let dir: string;

before(async () => {
  s = await startTestServer({ extra: '[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = []\n' });
  dir = await mkdtemp(join(tmpdir(), 'arcline-openapi-'));
});
after(async () => {
  await s?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the served document is docs/openapi.json, and redocly lint passes without warnings', async () => {
  const r = await fetch(`http://127.0.0.1:${s.server.http[0]?.port}/api/openapi.json`);
  assert.equal(r.status, 200);
  const served = (await r.json()) as { openapi: string; paths: Record<string, unknown> };
  assert.equal(served.openapi, '3.1.0');
  assert.ok(Object.keys(served.paths).length >= 20);
  const published = await readFile(join(ROOT, 'docs/openapi.json'), 'utf8');
  // Compared as JSON (biome may lay the file out its own way).
  assert.deepEqual(served, JSON.parse(published), 'docs/openapi.json is stale: npm run openapi');
  assert.deepEqual(JSON.parse(await openApiText()), served);
  const file = join(dir, 'openapi.json');
  await writeFile(file, published);
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules/@redocly/cli/bin/cli.js'),
      'lint',
      file,
      '--config',
      join(ROOT, 'redocly.yaml'),
      '--format=summary',
    ],
    {
      cwd: dir,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    },
  );
  const out = stdout + stderr;
  assert.match(out, /Your API description is valid/);
  assert.match(out, /validated in/);
  assert.doesNotMatch(out, /warning|error/i);
});
