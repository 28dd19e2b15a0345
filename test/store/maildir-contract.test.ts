// The mail store contract (test/store/contract.ts) run against the Maildir store, with the
// SQLite index (IndexClient) and with the PostgreSQL one (PostgresMailIndex, one node; each
// store in an account of its own on one database for the file).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccountId } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { PostgresMailIndex } from '../../src/store/index/postgres.ts';
import { createMaildirStore } from '../../src/store/maildir/index.ts';
import { databaseForFile } from '../harness/postgres.ts';
import { tempStore } from '../harness/store.ts';
import { mailStoreContract } from './contract.ts';

mailStoreContract('maildir', async () => {
  const { dir, store, reopen } = await tempStore('arcline-contract-');
  // As the server does at start: the mail index opened, the search indexer started.
  await store.openIndex();
  return {
    store,
    account: 'alice@example.test' as AccountId,
    reopen: async () => {
      const s = reopen();
      await s.openIndex();
      return s;
    },
    loseIndex: async () => {
      for (const f of ['index.db', 'index.db-wal', 'index.db-shm']) await rm(join(dir, f), { force: true });
    },
    loseSearchIndex: async () => {
      for (const f of ['search.db', 'search.db-wal', 'search.db-shm']) await rm(join(dir, f), { force: true });
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

const pg = databaseForFile(1);
let stores = 0;

mailStoreContract('maildir on the PostgreSQL index', async () => {
  const db = pg.pools[0] as Postgres;
  const dir = await mkdtemp(join(tmpdir(), 'arcline-contract-pg-'));
  const account = `pg${process.pid}n${++stores}@example.test` as AccountId;
  const open = async () => {
    const root = join(dir, 'mail');
    const s = createMaildirStore({
      root,
      spoolDir: join(dir, 'spool'),
      indexPath: join(dir, 'unused.db'),
      index: new PostgresMailIndex(db, root),
      search: { path: join(dir, 'search.db') },
      log: silentLogger(),
    });
    await s.openIndex();
    return s;
  };
  return {
    store: await open(),
    account,
    reopen: open,
    // The account's rows, as a lost index would lose them (the files stay the truth).
    loseIndex: async () => {
      for (const t of ['mail_mailboxes', 'mail_emails', 'mail_thread_keys', 'mail_account_changes'])
        await db.query(`DELETE FROM ${t} WHERE account = $1`, [account]);
      for (const t of ['mail_account_seq', 'mail_uidvalidity_seq'])
        await db.query(`DELETE FROM ${t} WHERE account = $1`, [account]);
    },
    loseSearchIndex: async () => {
      for (const f of ['search.db', 'search.db-wal', 'search.db-shm']) await rm(join(dir, f), { force: true });
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
