// A dedicated PostgreSQL session: one connection of its own, outside the pool, for what must
// stay on one backend for as long as the node runs (LISTEN in db/notify.ts, session advisory
// locks in db/leader.ts). A pooled client held for ever would shrink the pool and, when its
// connection died, be handed back broken; a session here is watched by its owner instead:
// TCP keepalive, a periodic SELECT 1 with a deadline (ping), and 'error'/'end' events, after
// which the owner makes a new one. The session's state (what it LISTENs to, which locks it
// holds) dies with its backend: that is the point (a dead node's locks go with it).

import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { PostgresOptions } from './postgres.ts';

export type SessionOptions = Pick<PostgresOptions, 'url' | 'password' | 'connectTimeoutMs' | 'applicationName'>;

/** Opens a session. `purpose` is added to application_name ("arcline/node-a listen"), so
 *  pg_stat_activity tells the sessions of a node apart. An 'error' listener is attached before
 *  connecting: a broken session must never be an unhandled 'error' event (a crash). */
export async function openSession(opts: SessionOptions, purpose: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: opts.url,
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    connectionTimeoutMillis: opts.connectTimeoutMs,
    application_name: `${opts.applicationName} ${purpose}`.slice(0, 63),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    closeSession(client);
    throw e;
  }
  return client;
}

/** The backend's process id (pg_stat_activity.pid, pg_terminate_backend). */
export function backendPid(client: pg.Client): number | null {
  const pid = (client as unknown as { processID?: unknown }).processID;
  return typeof pid === 'number' ? pid : null;
}

/** True when the session answers SELECT 1 within `timeoutMs`. */
export async function ping(client: pg.Client, timeoutMs: number): Promise<boolean> {
  const ac = new AbortController();
  try {
    return await Promise.race([
      client.query('SELECT 1').then(
        () => true,
        () => false,
      ),
      delay(timeoutMs, false, { signal: ac.signal }).catch(() => false),
    ]);
  } finally {
    ac.abort();
  }
}

/** Ends a session without waiting: a dead peer cannot hold us up (pg destroys the socket
 *  when a query is still outstanding; otherwise the goodbye is written and the socket ends). */
export function closeSession(client: pg.Client): void {
  client.end().catch(() => {});
  // A socket whose peer vanished may never see its end: destroy it after a grace.
  setTimeout(() => client.connection.stream.destroy(), 2000).unref();
}
