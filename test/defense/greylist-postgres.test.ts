// Greylisting on the shared PostgreSQL (src/defense/greylist-postgres.ts) against the contract:
// each opener its own pool, as each node of a cluster has; one database for the file, emptied
// for each test.

import { configSchema } from '../../src/config/schema.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { openGreylistStorage } from '../../src/defense/greylist.ts';
import { PostgresGreylistStorage } from '../../src/defense/greylist-postgres.ts';
import { databaseForFile } from '../harness/postgres.ts';
import { greylistContract } from './greylist-contract.ts';

const { pools } = databaseForFile(2);

greylistContract('postgres', async () => {
  await PostgresGreylistStorage.open(pools[0] as Postgres);
  await pools[0]?.query('TRUNCATE greylist_triplet, greylist_client');
  let n = 0;
  // The second node opens through openGreylistStorage, as the server will.
  const config = configSchema.parse({});
  return {
    node: () =>
      n++ % 2 ? openGreylistStorage(config, pools[1] as Postgres) : PostgresGreylistStorage.open(pools[0] as Postgres),
    close: async () => {},
  };
});
