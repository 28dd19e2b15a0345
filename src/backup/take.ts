// `arcline backup DIR`: a consistent copy of a running server's durable state (docs/backup.md).
//
// The server and the CLI keep writing while this runs (deliveries, flag changes, the queue), so
// the order of the copy is what makes it consistent:
// 1. Every SQLite database in the state directory is copied first, each with `VACUUM INTO`: one
//    read transaction, a consistent image of that database at one instant, taken without
//    blocking the server (WAL: readers and the writer do not wait for each other).
// 2. The queue's spool files ({state}/queue/<id>.eml) of the messages in that queue snapshot.
//    A spool file is written and fsynced before its row commits, and removed after its rows go,
//    so every row of the snapshot had its file at the snapshot; a file gone now means the
//    message was delivered (or deleted) since, and its rows are dropped from the copy.
// 3. The Maildir tree, after the index snapshot. Message files never change once in new/ or cur/;
//    only their names do (new/ -> cur/, flag letters after ":2,"), so a file is found by its
//    unique base: when the name listed is gone, new/ and cur/ are listed again and the base is
//    copied under its current name. A base found nowhere was expunged after the snapshot: the
//    restored server's first look at the mailbox (maildir/mailbox.ts reconcile) finds its index
//    row without a file and expunges it; a file delivered after the snapshot is found without a
//    row and gets the next UID. Every message indexed at the snapshot and still present keeps
//    its UID and its mailbox's UIDVALIDITY. Flags are the file's (the files are the truth for
//    flags); dovecot-keywords is copied after the messages, so it names every keyword letter
//    they use. tmp/ directories are recreated empty (nothing in them was acknowledged).
// 4. Everything else in the state directory (DKIM keys, the TLS pair, ACME keys and
//    certificates, whatever comes later), except what is not state: the spool of messages being
//    received, SQLite's -wal/-shm/-journal companions (the copies are whole databases), the
//    server's lock file, and the full-text search index (mailsearch.db: large, and rebuilt from
//    the messages by the restored server, store/search/indexer.ts).
// Every file is fsynced as it is written, every directory after its entries, and manifest.json
// last: a directory without a manifest is an interrupted backup.

import { constants, mkdirSync } from 'node:fs';
import { mkdir, open, readdir, rename, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ArclineError, errorMessage, isArclineError } from '../core/errors.ts';
import { ensurePrivateFileSync } from '../core/private-files.ts';
import { schemaVersion } from '../core/sqlite.ts';
import { LOCK_FILE } from '../core/state-lock.ts';
import { splitName } from '../store/maildir/flags.ts';
import {
  copyFileHashed,
  type DatabaseEntry,
  eachLimited,
  type FileEntry,
  FORMAT,
  FORMAT_VERSION,
  hashFile,
  MANIFEST,
  type Manifest,
  syncDir,
} from './manifest.ts';

export interface BackupOptions {
  readonly state: string;
  readonly maildir: string;
  /** Where to write the backup: a new or empty directory. */
  readonly dir: string;
  readonly hostname: string;
  /** The arcline version taking it. */
  readonly version: string;
}

/** Files copied at a time (the copies are fsynced one by one: parallel fsyncs share journal commits). */
const COPY_WIDTH = 16;
const SQLITE_MAGIC = 'SQLite format 3\0';
const NOT_STATE = new Set(['spool', LOCK_FILE, 'mailsearch.db']);
const COMPANION = /-(wal|shm|journal)$/;

class Backup {
  readonly dirs: string[] = [];
  readonly files: FileEntry[] = [];
  readonly databases: DatabaseEntry[] = [];
  messages = 0;
  expunged = 0;
  dequeued = 0;
  readonly out: string;
  constructor(out: string) {
    this.out = out;
  }

  async mkdir(rel: string): Promise<void> {
    await mkdir(join(this.out, rel), { mode: 0o700 });
    this.dirs.push(rel);
  }

  /** Removes a directory made for a folder that was gone when it came to be copied (it would
   *  come back as a folder without new/ and cur/). */
  async unmake(rel: string): Promise<void> {
    await rmdir(join(this.out, rel));
    this.dirs.splice(this.dirs.lastIndexOf(rel), 1);
  }

  /** Copies one file; false when it is gone. */
  async copy(from: string, rel: string): Promise<boolean> {
    const r = await copyFileHashed(from, join(this.out, rel));
    if (r) this.files.push({ path: rel, ...r });
    return r !== null;
  }
}

export async function takeBackup(opts: BackupOptions): Promise<Manifest> {
  const started = performance.now();
  await prepareTarget(opts.dir).catch((e: unknown) => {
    if (isArclineError(e)) throw e;
    // EACCES most often: the backup is written as the server's account (docs/backup.md)
    throw new ArclineError('CONFIG', `cannot write the backup to ${opts.dir}: ${errorMessage(e)}`);
  });
  const b = new Backup(opts.dir);
  await b.mkdir('state');
  await b.mkdir('maildir');
  const state = await listState(opts.state);
  for (const rel of state.dirs) await b.mkdir(`state/${rel}`);
  const snapshot = new Date();
  // 1. the databases, together, before anything they describe
  for (const rel of state.databases) b.databases.push(snapshotDatabase(join(opts.state, rel), b.out, `state/${rel}`));
  // 2. the queue's files
  if (state.databases.includes('queue.db') && state.dirs.includes('queue')) await copyQueue(b, opts.state);
  // 3. the Maildir tree
  await copyTree(b, opts.maildir, 'maildir');
  // 4. the rest of the state directory
  await eachLimited(state.files, COPY_WIDTH, async (rel) => {
    await b.copy(join(opts.state, rel), `state/${rel}`);
  });
  for (const d of b.databases) {
    const fh = await open(join(b.out, d.path), constants.O_RDWR);
    await fh.sync().finally(() => fh.close());
    b.files.push({ path: d.path, ...(await hashFile(join(b.out, d.path))) });
  }
  for (const d of [...b.dirs].reverse()) await syncDir(join(b.out, d));
  b.files.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  const manifest: Manifest = {
    format: FORMAT,
    version: FORMAT_VERSION,
    arcline: opts.version,
    created: snapshot.toISOString(),
    hostname: opts.hostname,
    source: { state: opts.state, maildir: opts.maildir },
    databases: b.databases,
    totals: {
      files: b.files.length,
      bytes: b.files.reduce((n, f) => n + f.size, 0),
      messages: b.messages,
      expunged: b.expunged,
      dequeued: b.dequeued,
      seconds: Math.round((performance.now() - started) / 10) / 100,
    },
    dirs: b.dirs,
    files: b.files,
  };
  const tmp = join(b.out, `${MANIFEST}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(manifest, null, 1)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(b.out, MANIFEST));
  await syncDir(b.out);
  return manifest;
}

/** DIR must be new (its parent exists) or an empty directory. */
async function prepareTarget(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      return;
    }
    if (code === 'ENOTDIR') throw new ArclineError('INVALID', `${dir} is not a directory`);
    throw e;
  }
  if (entries.length > 0) throw new ArclineError('INVALID', `${dir} is not empty: a backup goes into a new directory`);
  // An empty directory made by someone else: made private like the rest (rmdir + mkdir 0700).
  await rmdir(dir);
  mkdirSync(dir, { mode: 0o700 });
}

interface StateListing {
  readonly dirs: string[];
  readonly databases: string[];
  readonly files: string[];
}

/** The state directory's entries by kind (relative paths), without what is not state. */
async function listState(root: string): Promise<StateListing> {
  const out: StateListing = { dirs: [], databases: [], files: [] };
  const walk = async (rel: string) => {
    const entries = await readdir(join(root, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (rel === '' && NOT_STATE.has(e.name)) continue;
      if (rel === 'queue') continue; // copied from the queue snapshot (copyQueue)
      if (e.isDirectory()) {
        out.dirs.push(r);
        await walk(r);
      } else if (e.isFile() && !COMPANION.test(e.name)) {
        ((await isSqlite(join(root, r))) ? out.databases : out.files).push(r);
      }
    }
  };
  await walk('');
  return out;
}

async function isSqlite(path: string): Promise<boolean> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(16);
    const { bytesRead } = await fh.read(buf, 0, 16, 0);
    return bytesRead === 16 && buf.toString('latin1') === SQLITE_MAGIC;
  } finally {
    await fh.close();
  }
}

/** VACUUM INTO: a consistent copy of the database as of one read transaction, not migrated. */
function snapshotDatabase(path: string, out: string, rel: string): DatabaseEntry {
  const target = join(out, rel);
  ensurePrivateFileSync(target); // an empty 0600 file: SQLite would create it 0644
  const db = new DatabaseSync(path);
  try {
    db.exec('PRAGMA busy_timeout = 30000');
    db.prepare('VACUUM INTO ?').run(target);
  } finally {
    db.close();
  }
  const copy = new DatabaseSync(target);
  try {
    return { path: rel, schema: schemaVersion(copy) };
  } finally {
    copy.close();
  }
}

/** The spool files of the queue snapshot; rows whose file is gone are dropped from the copy. */
async function copyQueue(b: Backup, state: string): Promise<void> {
  const db = new DatabaseSync(join(b.out, 'state/queue.db'));
  try {
    db.exec('PRAGMA foreign_keys = ON');
    const ids = (db.prepare('SELECT id FROM message').all() as { id: string }[]).map((r) => r.id);
    const gone: string[] = [];
    await eachLimited(ids, COPY_WIDTH, async (id) => {
      if (!(await b.copy(join(state, 'queue', `${id}.eml`), `state/queue/${id}.eml`))) gone.push(id);
    });
    const drop = db.prepare('DELETE FROM message WHERE id = ?');
    for (const id of gone) drop.run(id);
    b.dequeued = gone.length;
  } finally {
    db.close();
  }
}

/** Copies a directory tree; Maildirs (new/ and cur/ side by side) by unique base. */
async function copyTree(b: Backup, from: string, rel: string): Promise<boolean> {
  const entries = await readdir(from, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null; // a folder deleted (or renamed) meanwhile
    throw e;
  });
  if (!entries) return false;
  const names = new Set(entries.filter((e) => e.isDirectory()).map((e) => e.name));
  const maildir = names.has('new') && names.has('cur');
  if (maildir) {
    for (const sub of ['new', 'cur', 'tmp']) await b.mkdir(`${rel}/${sub}`);
    await copyMessages(b, from, rel);
  }
  const files: string[] = [];
  for (const e of entries) {
    if (e.isDirectory()) {
      if (maildir && (e.name === 'new' || e.name === 'cur' || e.name === 'tmp')) continue;
      const sub = `${rel}/${e.name}`;
      await b.mkdir(sub);
      if (!(await copyTree(b, join(from, e.name), sub))) await b.unmake(sub);
    } else if (e.isFile()) files.push(e.name);
  }
  // After the messages: dovecot-keywords then names every letter they carry.
  await eachLimited(files, COPY_WIDTH, async (name) => {
    await b.copy(join(from, name), `${rel}/${name}`);
  });
  return true;
}

type Where = { readonly sub: 'new' | 'cur'; readonly name: string };

/** new/ then cur/, by unique base: a file moved from new/ to cur/ between the two listings is
 *  in both, and its cur/ name (the later) wins. */
async function listMessages(dir: string): Promise<Map<string, Where>> {
  const out = new Map<string, Where>();
  for (const sub of ['new', 'cur'] as const) {
    const names = await readdir(join(dir, sub)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e;
    });
    for (const name of names) out.set(splitName(name).base, { sub, name });
  }
  return out;
}

/** Copies new/ and cur/ of one Maildir; a file renamed meanwhile is looked up again by base. */
async function copyMessages(b: Backup, from: string, rel: string): Promise<void> {
  let todo: (readonly [string, Where])[] = [...(await listMessages(from))];
  for (let round = 0; todo.length > 0; round++) {
    const missed: string[] = [];
    await eachLimited(todo, COPY_WIDTH, async ([base, w]) => {
      if (await b.copy(join(from, w.sub, w.name), `${rel}/${w.sub}/${w.name}`)) b.messages++;
      else missed.push(base);
    });
    if (missed.length === 0) return;
    const now = await listMessages(from);
    const again = missed.filter((base) => now.has(base)).map((base) => [base, now.get(base) as Where] as const);
    // Renamed at every look (a client flipping flags in a loop): three rounds, then it is left out.
    b.expunged += missed.length - (round < 2 ? again.length : 0);
    todo = round < 2 ? again : [];
  }
}
