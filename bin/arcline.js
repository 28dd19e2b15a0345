#!/usr/bin/env node
// Entry point of the `arcline` command.
// - Sizes libuv's thread pool before any I/O: every fsync of a delivery runs there, and the
//   default of 4 threads would serialise concurrent deliveries.
// - Sets the umask to 077: every file and directory the server or the CLI creates is private
//   (0600/0700) even where a library creates one without a mode of its own; ours all give one.
// - Silences only the ExperimentalWarning of node:sqlite (still flagged experimental in Node 24);
//   every other warning is still printed.
// - Runs the compiled dist/ when present (installed package), else the TypeScript sources
//   directly (a git checkout: Node >= 22.18 strips types natively).
import { existsSync } from 'node:fs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `arcline: needs Node.js >= 22.19 (this is ${process.version}); in a checkout, use \`npm start\` / \`npm run arcline\`, which run the pinned Node 24\n`,
  );
  process.exit(1);
}

process.env.UV_THREADPOOL_SIZE ??= '16';
process.umask(0o077);

const defaultWarningListeners = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name === 'ExperimentalWarning' && /SQLite/i.test(w.message)) return;
  for (const l of defaultWarningListeners) l.call(process, w);
});

const compiled = new URL('../dist/cli/main.js', import.meta.url);
const entry = existsSync(compiled) ? compiled : new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
