// Where TLS reporting (RFC 8460) keeps its counters and the day it reported last. Two sides
// behind one interface (test/reports/tlsrpt-store.test.ts runs the same cases on both):
// - SQLite for one node, {state}/tls-reports.db;
// - PostgreSQL for a cluster (component `tlsrpt`): every node adds its counters, the node that
//   runs the leader task `tls-reports` reads them and moves the shared mark, so neither a
//   restart nor another node sends a day twice.

import type { DatabaseSync } from 'node:sqlite';
import { LIMITS } from '../core/limits.ts';
import { openDatabase, transaction } from '../core/sqlite.ts';
import type { Postgres } from '../db/postgres.ts';
import type { ReportPolicy, TlsCount } from './tlsrpt-format.ts';

export interface TlsReportStore {
  /** Adds the counts (a counter already stored grows by the count). */
  add(counts: readonly TlsCount[]): Promise<void>;
  /** The counters of a day (at most LIMITS.tlsReports.maxRowsPerDay). */
  countsFor(day: string): Promise<TlsCount[]>;
  /** The last day reported (YYYY-MM-DD), or null. */
  reportedThrough(): Promise<string | null>;
  /** Moves the mark to `day` when it is before it; false when the mark is already there or past
   *  (another node, or an earlier run, took the day): then the day is not reported again. */
  claim(day: string): Promise<boolean>;
  /** Forgets the counters of the days before `day`. */
  prune(before: string): Promise<void>;
  close(): Promise<void>;
}

interface Row {
  day: string;
  domain: string;
  policy_type: string;
  policy_lines: string;
  policy_mx: string;
  result: string;
  sending_ip: string;
  mx_hostname: string;
  receiving_ip: string;
  reason_code: string;
  count: number;
}

const COLUMNS =
  'day, domain, policy_type, policy_lines, policy_mx, result, sending_ip, mx_hostname, receiving_ip, reason_code';

function stringList(text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v.map(String) : [];
  } catch {
    return [];
  }
}

function fromRow(r: Row): TlsCount {
  const policy: ReportPolicy = {
    type: r.policy_type === 'sts' ? 'sts' : 'no-policy-found',
    lines: stringList(r.policy_lines),
    mx: stringList(r.policy_mx),
  };
  return {
    day: r.day,
    domain: r.domain,
    policy,
    result: r.result as TlsCount['result'],
    sendingIp: r.sending_ip,
    mxHostname: r.mx_hostname,
    receivingIp: r.receiving_ip,
    reasonCode: r.reason_code,
    count: Number(r.count),
  };
}

function values(c: TlsCount): (string | number)[] {
  return [
    c.day,
    c.domain,
    c.policy.type,
    JSON.stringify(c.policy.lines),
    JSON.stringify(c.policy.mx),
    c.result,
    c.sendingIp,
    c.mxHostname,
    c.receivingIp,
    c.reasonCode,
    c.count,
  ];
}

const TABLE = (collate: string) => `CREATE TABLE tlsrpt_counts (
     day TEXT ${collate} NOT NULL,
     domain TEXT ${collate} NOT NULL,
     policy_type TEXT ${collate} NOT NULL,
     policy_lines TEXT ${collate} NOT NULL,
     policy_mx TEXT ${collate} NOT NULL,
     result TEXT ${collate} NOT NULL,
     sending_ip TEXT ${collate} NOT NULL,
     mx_hostname TEXT ${collate} NOT NULL,
     receiving_ip TEXT ${collate} NOT NULL,
     reason_code TEXT ${collate} NOT NULL,
     count BIGINT NOT NULL,
     PRIMARY KEY (${COLUMNS}));
   CREATE TABLE tlsrpt_mark (id INTEGER PRIMARY KEY CHECK (id = 1), reported_through TEXT NOT NULL);`;

/** One node: {state}/tls-reports.db. */
export class SqliteTlsReportStore implements TlsReportStore {
  readonly #db: DatabaseSync;

  constructor(path: string) {
    this.#db = openDatabase(path, { migrations: [TABLE('')] });
  }

  async add(counts: readonly TlsCount[]): Promise<void> {
    if (counts.length === 0) return;
    const st = this.#db.prepare(
      `INSERT INTO tlsrpt_counts (${COLUMNS}, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (${COLUMNS}) DO UPDATE SET count = count + excluded.count`,
    );
    transaction(this.#db, () => {
      for (const c of counts) st.run(...values(c));
    });
  }

  async countsFor(day: string): Promise<TlsCount[]> {
    const rows = this.#db
      .prepare(`SELECT ${COLUMNS}, count FROM tlsrpt_counts WHERE day = ? ORDER BY domain LIMIT ?`)
      .all(day, LIMITS.tlsReports.maxRowsPerDay) as unknown as Row[];
    return rows.map(fromRow);
  }

  async reportedThrough(): Promise<string | null> {
    const r = this.#db.prepare('SELECT reported_through FROM tlsrpt_mark WHERE id = 1').get() as
      | { reported_through: string }
      | undefined;
    return r?.reported_through ?? null;
  }

  async claim(day: string): Promise<boolean> {
    // One statement: the insert or the update happens only when the mark is before the day.
    const res = this.#db
      .prepare(
        `INSERT INTO tlsrpt_mark (id, reported_through) VALUES (1, ?)
         ON CONFLICT (id) DO UPDATE SET reported_through = excluded.reported_through
         WHERE tlsrpt_mark.reported_through < excluded.reported_through`,
      )
      .run(day);
    return Number(res.changes) === 1;
  }

  async prune(before: string): Promise<void> {
    this.#db.prepare('DELETE FROM tlsrpt_counts WHERE day < ?').run(before);
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}

export const TLSRPT_MIGRATIONS: readonly string[] = [TABLE('COLLATE "C"')];

/** A cluster: the tables `tlsrpt_counts` and `tlsrpt_mark`, shared by every node. */
export class PostgresTlsReportStore implements TlsReportStore {
  readonly #db: Postgres;

  private constructor(db: Postgres) {
    this.#db = db;
  }

  /** Migrates the `tlsrpt` component; the pool stays the caller's. */
  static async open(db: Postgres): Promise<PostgresTlsReportStore> {
    await db.migrate('tlsrpt', TLSRPT_MIGRATIONS);
    return new PostgresTlsReportStore(db);
  }

  async add(counts: readonly TlsCount[]): Promise<void> {
    if (counts.length === 0) return;
    await this.#db.tx(async (q) => {
      for (const c of counts) {
        await q.query(
          `INSERT INTO tlsrpt_counts (${COLUMNS}, count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (${COLUMNS}) DO UPDATE SET count = tlsrpt_counts.count + EXCLUDED.count`,
          values(c),
        );
      }
    });
  }

  async countsFor(day: string): Promise<TlsCount[]> {
    const rows = await this.#db.rows<Row>(
      `SELECT ${COLUMNS}, count FROM tlsrpt_counts WHERE day = $1 ORDER BY domain LIMIT $2`,
      [day, LIMITS.tlsReports.maxRowsPerDay],
    );
    return rows.map(fromRow);
  }

  async reportedThrough(): Promise<string | null> {
    const rows = await this.#db.rows<{ reported_through: string }>(
      'SELECT reported_through FROM tlsrpt_mark WHERE id = 1',
    );
    return rows[0]?.reported_through ?? null;
  }

  async claim(day: string): Promise<boolean> {
    // Atomic under concurrency: two nodes claiming the same day, one row changes.
    const res = await this.#db.query(
      `INSERT INTO tlsrpt_mark (id, reported_through) VALUES (1, $1)
       ON CONFLICT (id) DO UPDATE SET reported_through = EXCLUDED.reported_through
       WHERE tlsrpt_mark.reported_through < EXCLUDED.reported_through`,
      [day],
    );
    return res.rowCount === 1;
  }

  async prune(before: string): Promise<void> {
    await this.#db.query('DELETE FROM tlsrpt_counts WHERE day < $1', [before]);
  }

  async close(): Promise<void> {}
}

/** The store: {state}/tls-reports.db, or the shared PostgreSQL (`db`) of a cluster. */
export async function openTlsReportStore(o: { readonly file: string; readonly db: Postgres | null }) {
  if (o.db) return PostgresTlsReportStore.open(o.db);
  return new SqliteTlsReportStore(o.file);
}
