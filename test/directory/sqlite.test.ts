import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/core/log.ts';
import { openSqliteDirectory } from '../../src/directory/sqlite.ts';
import { runDirectoryContract } from './contract.ts';

runDirectoryContract('sqlite', async () => {
  const path = join(await mkdtemp(join(tmpdir(), 'arcline-dir-')), 'state', 'arcline.db');
  const open = () => openSqliteDirectory({ path, bcryptCost: 4, log: silentLogger() });
  return { dir: open(), reopen: async () => open() };
});
