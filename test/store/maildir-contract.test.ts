// The mail store contract (test/store/contract.ts) run against the Maildir store.

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccountId } from '../../src/core/ids.ts';
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
