// The mail store contract (test/store/contract.ts) run against the Maildir store.

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccountId } from '../../src/core/ids.ts';
import { tempStore } from '../harness/store.ts';
import { mailStoreContract } from './contract.ts';

mailStoreContract('maildir', async () => {
  const { dir, store, reopen } = await tempStore('arcline-contract-');
  return {
    store,
    account: 'alice@example.test' as AccountId,
    reopen: async () => reopen(),
    loseIndex: async () => {
      for (const f of ['index.db', 'index.db-wal', 'index.db-shm']) await rm(join(dir, f), { force: true });
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
