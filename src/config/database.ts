// [database]: where the shared state lives (docs/cluster.md). Empty url (the default): the
// embedded SQLite databases under [storage] state, one machine. A postgres:// URL: PostgreSQL
// for everything several nodes share (issue #18; src/db/postgres.ts).

import { z } from 'zod';
import { duration } from './fields.ts';

export const databaseSection = z
  .strictObject({
    /** "" (SQLite, one machine) or "postgres://user@host:5432/dbname" (options as libpq's URL,
     *  e.g. "?sslmode=verify-full"). Keep the password out of it: password_file. */
    url: z
      .string()
      .refine((u) => u === '' || /^postgres(ql)?:\/\//.test(u), { message: 'not a postgres:// URL' })
      .default(''),
    /** A file holding the database password (0600, read at start); "" for none (trust, peer or
     *  a password in ~/.pgpass). */
    password_file: z.string().default(''),
    /** Connections this node opens at most. */
    pool_size: z.number().int().min(2).max(200).default(10),
    /** Giving up on connecting. */
    connect_timeout: duration.prefault('10s'),
    /** A statement running longer is cancelled by the server (statement_timeout). */
    statement_timeout: duration.prefault('30s'),
  })
  .prefault({});

export type DatabaseConfig = z.infer<typeof databaseSection>;
