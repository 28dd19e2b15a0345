// The IP lists and bans on the shared PostgreSQL (src/defense/store-postgres.ts) against the
// contract: each connection its own pool, as each node of a cluster has; one database for the
// file, emptied for each test.

import type { Postgres } from '../../src/db/postgres.ts';
import { openDefenseStore } from '../../src/defense/open-store.ts';
import { PostgresDefenseStore } from '../../src/defense/store-postgres.ts';
import { databaseForFile } from '../harness/postgres.ts';
import { defenseStoreContract } from './store-contract.ts';

const { pools } = databaseForFile(2);

defenseStoreContract('postgres', async () => {
  await PostgresDefenseStore.open(pools[0] as Postgres);
  await pools[0]?.query('TRUNCATE defense_networks, defense_bans, defense_known_clients');
  let n = 0;
  // The second connection opens through openDefenseStore, as the server will.
  return {
    open: () =>
      n++ % 2
        ? openDefenseStore('/nonexistent', pools[1] as Postgres)
        : PostgresDefenseStore.open(pools[0] as Postgres),
    close: async () => {},
  };
});
