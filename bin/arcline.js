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
// - `serve` only: V8's young generation is capped (--max-semi-space-size=4, MB). Under SMTP load
//   the default lets it grow to 3 x 16 MB of mostly garbage, about 100 MB more RSS for no
//   measurable speed (docs/benchmarks.md, issue #12). The flag can only be given at start, so the
//   process re-executes itself with it (process.execve: same PID, signals and systemd unchanged),
//   unless the operator already set the flag (node flags or NODE_OPTIONS).
import { existsSync } from 'node:fs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `arcline: needs Node.js >= 22.19 (this is ${process.version}); in a checkout, use \`npm start\` / \`npm run arcline\`, which run the pinned Node 24\n`,
  );
  process.exit(1);
}

const SEMI_SPACE_FLAG = '--max-semi-space-size';
if (
  firstCommand(process.argv.slice(2)) === 'serve' &&
  typeof process.execve === 'function' &&
  ![...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith(SEMI_SPACE_FLAG))
) {
  try {
    process.execve(
      process.execPath,
      [process.execPath, `${SEMI_SPACE_FLAG}=4`, ...process.execArgv, ...process.argv.slice(1)],
      process.env,
    );
  } catch {
    // Not allowed here (a sandbox without execve): run on with V8's default.
  }
}

/** The command word: the first argument that is not an option (or the value of --config). */
function firstCommand(args) {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--config') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
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
