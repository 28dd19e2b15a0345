// The /admin/ route over a built web admin (src/web/admin-static.ts): files from memory with their
// types and cache headers, the app's routes answered with index.html, traversal refused, the
// "not built" page, and the bounds on what is read at start.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminStaticRoute } from '../../src/web/admin-static.ts';
import type { Route, WebResponse } from '../../src/web/routes.ts';

const INDEX = '<!doctype html><script type="module" src="/admin/assets/index-AbC123.js"></script>';

describe('web admin static files', () => {
  let dir: string;
  let route: Route;
  const get = async (path: string, method = 'GET'): Promise<WebResponse | null> =>
    route({ method, host: 'mx.test.example', path, query: new URLSearchParams(), body: null, secure: true });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-admin-static-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), INDEX);
    await writeFile(join(dir, 'assets/index-AbC123.js'), 'console.log("é")');
    await writeFile(join(dir, 'assets/index-XyZ789.css'), 'body{margin:0}');
    await writeFile(join(dir, 'assets/logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47])); // not text: not served
    route = adminStaticRoute(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('index.html at /admin/ and for every route of the app, never cached, with the CSP', async () => {
    for (const path of ['/admin/', '/admin/users', '/admin/domains/example.org', '/admin/domains/a%40b']) {
      const r = await get(path);
      assert.equal(r?.status, 200, path);
      assert.equal(r?.body, INDEX);
      assert.equal(r?.headers?.['content-type'], 'text/html; charset=utf-8');
      assert.equal(r?.headers?.['cache-control'], 'no-store');
      assert.match(r?.headers?.['content-security-policy'] ?? '', /^default-src 'self';.*frame-ancestors 'none'/);
      assert.equal(r?.headers?.['x-content-type-options'], 'nosniff');
    }
    assert.deepEqual(await get('/admin'), {
      status: 308,
      headers: { location: '/admin/', 'cache-control': 'no-store' },
      body: '',
    });
  });

  test('hashed assets with their type, cached for a year; HEAD too', async () => {
    const js = await get('/admin/assets/index-AbC123.js');
    assert.equal(js?.status, 200);
    assert.equal(js?.body, 'console.log("é")');
    assert.equal(js?.headers?.['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js?.headers?.['cache-control'], 'public, max-age=31536000, immutable');
    const css = await get('/admin/assets/index-XyZ789.css', 'HEAD');
    assert.equal(css?.status, 200);
    assert.equal(css?.headers?.['content-type'], 'text/css; charset=utf-8');
  });

  test('missing files, traversal and other methods are refused; other paths are not ours', async () => {
    for (const path of [
      '/admin/assets/index-old.js',
      '/admin/assets/logo.png',
      '/admin/favicon.ico',
      '/admin/app.js',
      '/admin/../package.json',
      '/admin/assets/../index.html',
      '/admin/./index.html',
      '/admin/assets\\..\\index.html',
      `/admin/${'a/'.repeat(600)}`,
    ]) {
      const r = await get(path);
      assert.equal(r?.status, 404, path);
      assert.equal(r?.headers?.['cache-control'], 'no-store');
    }
    const post = await get('/admin/', 'POST');
    assert.equal(post?.status, 405);
    assert.equal(post?.headers?.['allow'], 'GET, HEAD');
    for (const path of ['/', '/api/v1/me', '/administrator', '/.well-known/mta-sts.txt']) {
      assert.equal(await get(path), null, path);
    }
  });

  test('without a build: a page that says how to make one', async () => {
    const r = await adminStaticRoute(join(dir, 'absent'))({
      method: 'GET',
      host: null,
      query: new URLSearchParams(),
      body: null,
      path: '/admin/',
      secure: false,
    });
    assert.equal(r?.status, 503);
    assert.match(r?.body ?? '', /npm run build:admin/);
    assert.equal(r?.headers?.['cache-control'], 'no-store');
  });

  test('what is read at start is bounded', async () => {
    const big = await mkdtemp(join(tmpdir(), 'arcline-admin-big-'));
    try {
      await writeFile(join(big, 'index.html'), INDEX);
      await writeFile(join(big, 'huge.js'), Buffer.alloc(2 * 1024 * 1024 + 1, 0x20));
      assert.throws(() => adminStaticRoute(big), /more than the limits allow \(huge\.js\)/);
    } finally {
      await rm(big, { recursive: true, force: true });
    }
  });
});
