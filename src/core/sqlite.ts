// SQLite through node:sqlite, the way every store of ours uses it: the parent directory and the
// files private, WAL journaling with a busy timeout (the server and the CLI share the files),
// foreign keys on, the schema migrated by PRAGMA user_version, and one transaction helper.
// Private files: node:sqlite would create the database with 0666 & ~umask (0644: password hashes
// readable by every local user), and SQLite gives its -wal and -shm files the database file's
// mode; so the file is made 0600 before SQLite opens it, and files left readable are narrowed.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ensurePrivateFileSync, tightenFileSync } from './private-files.ts';

export interface OpenOptions {
  /** Each entry moves the schema one version up; entry i makes version i + 1. */
  readonly migrations: readonly string[];
  /** Extra PRAGMAs, e.g. "synchronous = NORMAL". */
  readonly pragmas?: readonly string[];
}

export function openDatabase(path: string, opts: OpenOptions): DatabaseSync {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  ensurePrivateFileSync(path);
  for (const companion of [`${path}-wal`, `${path}-shm`]) tightenFileSync(companion);
  const db = new DatabaseSync(path);
  const pragmas = ['journal_mode = WAL', 'busy_timeout = 5000', 'foreign_keys = ON', ...(opts.pragmas ?? [])];
  db.exec(pragmas.map((p) => `PRAGMA ${p};`).join(' '));
  const version = Number((db.prepare('PRAGMA user_version').get() as Record<string, unknown>).user_version ?? 0);
  for (let v = version; v < opts.migrations.length; v++) {
    transaction(db, () => {
      db.exec(opts.migrations[v] as string);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    });
  }
  return db;
}

/** Runs fn in one write transaction (BEGIN IMMEDIATE: no lock upgrade deadlock between processes). */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const r = fn();
    db.exec('COMMIT');
    return r;
  } catch (e) {
    db.exec('ROLLBACK');
    throw e;
  }
}
