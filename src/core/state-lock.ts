// The server's claim on its state directory: `{state}/arcline.lock`, a tiny SQLite database the
// server holds an exclusive lock on (PRAGMA locking_mode = EXCLUSIVE) from start to stop. The lock
// is the operating system's (fcntl), so it goes with the process however that ends (kill -9
// included): no stale pid file to clean up. What it keeps apart:
// - two servers on one state directory (the second refuses to start);
// - `arcline restore` and a running server (restore refuses while the lock is held).
// `arcline backup` does not need it: it reads a running server's data consistently.
// SQLite keeps the locks of one process per file itself, so a check from the process that holds
// the lock (tests run the server in-process) sees it held and does not release it on close.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ArclineError } from './errors.ts';
import { ensurePrivateFileSync } from './private-files.ts';

export const LOCK_FILE = 'arcline.lock';

export interface StateLock {
  release(): void;
}

/** Takes the lock; throws ArclineError CONFIG when another server holds it. */
export function lockState(stateDir: string): StateLock {
  const path = join(stateDir, LOCK_FILE);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  ensurePrivateFileSync(path);
  const db = new DatabaseSync(path);
  try {
    db.exec(
      // journal in memory: the lock's one write leaves no -journal file beside it
      'PRAGMA busy_timeout = 0; PRAGMA journal_mode = MEMORY; PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; ' +
        'CREATE TABLE IF NOT EXISTS server (pid INTEGER NOT NULL, started INTEGER NOT NULL); DELETE FROM server;',
    );
    db.prepare('INSERT INTO server (pid, started) VALUES (?, ?)').run(process.pid, Date.now());
    db.exec('COMMIT');
  } catch (e) {
    db.close();
    if (!isBusy(e)) throw e;
    throw new ArclineError('CONFIG', `another arcline server is running on ${stateDir} (it holds ${path})`);
  }
  return {
    release() {
      if (db.isOpen) db.close();
    },
  };
}

/** Whether a server holds the lock of `stateDir` now. */
export function stateLocked(stateDir: string): boolean {
  const path = join(stateDir, LOCK_FILE);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { open: true, readOnly: true });
  } catch {
    return false; // no lock file: no server ever ran here
  }
  try {
    db.exec('PRAGMA busy_timeout = 0');
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return false;
  } catch (e) {
    if (isBusy(e)) return true;
    throw e;
  } finally {
    db.close();
  }
}

function isBusy(e: unknown): boolean {
  const code = (e as { errcode?: number }).errcode;
  return code === 5 || code === 6; // SQLITE_BUSY, SQLITE_LOCKED
}
