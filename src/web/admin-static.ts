// The web admin (web-admin/, built by `npm run build:admin` into dist-admin/) served at /admin/
// by the [http] listeners. The files are read once, when the server starts, into memory
// (bounded in count and size); a request can only ever get one of those files, so no path from
// outside reaches the file system. Paths that are not files are the single-page app's own routes
// and get index.html (history routing), except under assets/ (a missing asset is a 404, not a
// page). Headers (RFC 9111 §5.2.2 for Cache-Control): index.html `no-store` (it names the
// current hashed assets), hashed assets a year and `immutable` (RFC 8246); every answer carries
// the Content-Security-Policy `default-src 'self'` (the app has no inline script or style and
// fetches nothing but our API) and frame-ancestors 'none'.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Route, WebResponse } from './routes.ts';

export const ADMIN_PREFIX = '/admin/';

/** Where `npm run build:admin` writes: the package root's dist-admin/ (from src/web/ in a
 *  checkout and from dist/web/ in the npm and Debian packages alike). */
export const ADMIN_DIST = fileURLToPath(new URL('../../dist-admin/', import.meta.url));

const LIMITS = { maxFiles: 200, maxFileBytes: 2 * 1024 * 1024, maxTotalBytes: 8 * 1024 * 1024, maxDepth: 4 };

/** Text files only: the Route contract's body is a string (the build makes no binary asset). */
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>arcline admin</title></head>
<body><h1>The web admin is not built</h1>
<p>This installation has no built web admin. In the source checkout, run <code>npm run build:admin</code>
and restart the server.</p></body></html>
`;

interface StaticFile {
  readonly type: string;
  readonly body: string;
  readonly immutable: boolean;
}

/** Reads the built files under `dir` (relative names with '/'); empty when the build is absent. */
export function loadAdminFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!existsSync(join(dir, 'index.html'))) return files;
  let total = 0;
  const walk = (rel: string, depth: number) => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (depth < LIMITS.maxDepth) walk(name, depth + 1);
        continue;
      }
      const type = TYPES[extname(entry.name)];
      if (!entry.isFile() || !type) continue;
      const size = statSync(join(dir, name)).size;
      if (files.size >= LIMITS.maxFiles || size > LIMITS.maxFileBytes || total + size > LIMITS.maxTotalBytes) {
        throw new Error(`web admin: ${dir} holds more than the limits allow (${name})`);
      }
      total += size;
      files.set(name, {
        type,
        body: readFileSync(join(dir, name), 'utf8'),
        immutable: name.startsWith('assets/'),
      });
    }
  };
  walk('', 0);
  return files;
}

function answer(status: number, file: StaticFile, extra: Record<string, string> = {}): WebResponse {
  return {
    status,
    headers: {
      'content-type': file.type,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-store',
      ...SECURITY_HEADERS,
      ...extra,
    },
    body: file.body,
  };
}

const notFound: StaticFile = { type: 'text/plain; charset=utf-8', body: 'not found\n', immutable: false };

/** The /admin/ route over the files of `dir` (default: the package's dist-admin/). */
export function adminStaticRoute(dir: string = ADMIN_DIST): Route {
  const files = loadAdminFiles(dir);
  const index = files.get('index.html') ?? { type: 'text/html; charset=utf-8', body: NOT_BUILT, immutable: false };
  const indexStatus = files.size > 0 ? 200 : 503;
  return (req) => {
    if (req.path === '/admin') {
      return { status: 308, headers: { location: ADMIN_PREFIX, 'cache-control': 'no-store' }, body: '' };
    }
    if (!req.path.startsWith(ADMIN_PREFIX)) return null;
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, notFound, { allow: 'GET, HEAD' });
    const rel = req.path.slice(ADMIN_PREFIX.length);
    // Only the names read at start are ever answered (a map lookup, never a file-system path);
    // traversal-looking requests are refused outright all the same.
    if (rel.length > 1000 || /[\\\0]/.test(rel) || rel.split('/').some((s) => s === '..' || s === '.')) {
      return answer(404, notFound);
    }
    const file = rel === '' ? undefined : files.get(rel);
    if (file) return answer(200, file);
    // A missing file is a 404; any other path is a route of the app (they hold domain names and
    // addresses, so "has a dot" cannot tell them apart: the file types we serve, and .ico/.map, can).
    if (rel.startsWith('assets/') || Object.hasOwn(TYPES, extname(rel)) || /\.(?:ico|map|png)$/.test(rel)) {
      return answer(404, notFound);
    }
    return answer(indexStatus, index);
  };
}
