// The mail index contract (test/store/index-contract.ts) against the SQLite index as the server
// uses it: IndexClient, its worker threads on a database of their own per test.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexClient } from '../../src/store/index/client.ts';
import { indexContract } from './index-contract.ts';

indexContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-ixc-'));
  const root = join(dir, 'mail');
  const index = new IndexClient(join(dir, 'index.db'), root);
  return {
    index,
    root,
    close: async () => {
      await index.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
