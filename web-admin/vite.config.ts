// Builds the web admin (npm run build:admin) into dist-admin/ at the package root, served by the
// server at /admin/ (src/web/admin-static.ts). No inline script or style (the CSP is
// default-src 'self'), no modulepreload polyfill, no source maps in the package.
// `npm run dev:admin` serves the sources with live reload on http://127.0.0.1:5173/admin/ and
// passes /api/ to a running arcline (ARCLINE_URL, default http://127.0.0.1:8080).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/admin/',
  publicDir: false,
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: fileURLToPath(new URL('../dist-admin', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: {
    host: '127.0.0.1',
    proxy: { '/api/': process.env['ARCLINE_URL'] ?? 'http://127.0.0.1:8080' },
  },
  logLevel: 'warn',
});
