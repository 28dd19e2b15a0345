// SQLite through node:sqlite, the way every store of ours uses it: the parent directory and the
// files private, WAL journaling with a busy timeout (the server and the CLI share the files),
// foreign keys on, the schema migrated by PRAGMA user_version, and one transaction helper.
// Schema versions (docs/upgrading.md): each database's PRAGMA user_version is the number of its
// migrations applied; a database opened by an older arcline than the one that last migrated it
// (a roll back without restoring the backup taken before the upgrade) is refused, never used.
// Private files: node:sqlite would create the database with 0666 & ~umask (0644: password hashes
// readable by every local user), and SQLite gives its -wal and -shm files the database file's
// mode; so the file is made 0600 before SQLite opens it, and files left readable are narrowed.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ArclineError } from './errors.ts';
import { ensurePrivateFileSync, tightenFileSync } from './private-files.ts';

export interface OpenOptions {
  /** Each entry moves the schema one version up; entry i makes version i + 1. */
  readonly migrations: readonly string[];
  /** Extra PRAGMAs, e.g. "synchronous = NORMAL". */
  readonly pragmas?: readonly string[];
}

/** A database's schema version: PRAGMA user_version. */
export function schemaVersion(db: DatabaseSync): number {
  return Number((db.prepare('PRAGMA user_version').get() as Record<string, unknown>).user_version ?? 0);
}

export function openDatabase(path: string, opts: OpenOptions): DatabaseSync {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  ensurePrivateFileSync(path);
  for (const companion of [`${path}-wal`, `${path}-shm`]) tightenFileSync(companion);
  const db = new DatabaseSync(path);
  const pragmas = ['journal_mode = WAL', 'busy_timeout = 5000', 'foreign_keys = ON', ...(opts.pragmas ?? [])];
  db.exec(pragmas.map((p) => `PRAGMA ${p};`).join(' '));
  try {
    migrate(db, path, opts.migrations);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/** Applies the migrations `db` lacks, in order, each in its own transaction with the version
 *  it makes (a crash between two leaves a database at a version, never between). */
function migrate(db: DatabaseSync, path: string, migrations: readonly string[]): void {
  const version = schemaVersion(db);
  if (version > migrations.length) {
    throw new ArclineError(
      'CONFIG',
      `${path} has schema version ${version}, newer than this arcline knows (${migrations.length}): it was ` +
        'upgraded by a newer version; run that version, or restore the backup taken before the upgrade (docs/upgrading.md)',
    );
  }
  for (let v = version; v < migrations.length; v++) {
    transaction(db, () => {
      // Read again inside the write lock: another process (the server, the CLI) may have
      // migrated the same file since.
      if (schemaVersion(db) !== v) return;
      db.exec(migrations[v] as string);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    });
  }
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
