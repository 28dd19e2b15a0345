// Where the DMARC aggregate report rows wait for their day's report (RFC 7489 §7.2), and the
// "reported up to" day, so that no day is sent twice (not after a restart, nor after the task
// moved to another node of a cluster). Two sides behind one interface, one contract suite
// (test/reports/dmarc-store.test.ts), as defense/blocklist-state.ts:
// - SQLite, {state}/dmarc-reports.db, for one machine;
// - PostgreSQL for a cluster (component `dmarc_reports`).
// Rows are added in batches by the recorder (never one write per message); a policy domain and
// day keeps at most LIMITS.dmarcReports.maxRowsPerReport distinct rows (further new rows are
// dropped, counts of known rows still grow).

import type { DatabaseSync } from 'node:sqlite';
import { LIMITS } from '../core/limits.ts';
import { openDatabase, transaction } from '../core/sqlite.ts';
import type { Postgres, Queryable } from '../db/postgres.ts';
import { type DmarcRow, rowKey } from './dmarc-aggregate.ts';

export interface DayReport {
  /** The record as last seen that day (policy_published). */
  readonly record: string;
  /** Largest counts first, at most LIMITS.dmarcReports.maxRowsPerReport. */
  readonly rows: readonly DmarcRow[];
}

export interface DmarcReportStore {
  /** Adds the rows' counts (a row already stored grows; its day's record becomes the row's). */
  add(rows: readonly DmarcRow[]): Promise<void>;
  /** The policy domains with rows for `day` (YYYY-MM-DD), sorted. */
  domains(day: string): Promise<string[]>;
  /** A domain's rows of a day; null when there are none. */
  report(domain: string, day: string): Promise<DayReport | null>;
  /** Forgets a domain's rows of a day (its report was sent). */
  remove(domain: string, day: string): Promise<void>;
  /** The last day whose reports were all sent, or null. */
  reportedUpTo(): Promise<string | null>;
  /** Every day up to `day` is reported: its rows go, and the mark never moves back. Rows of
   *  days before `keepFrom` (unsent for too long) go too. */
  markReported(day: string, keepFrom: string): Promise<void>;
  close(): Promise<void>;
}

type RowData = Omit<DmarcRow, 'policyDomain' | 'day' | 'record' | 'count'>;

function rowData(r: DmarcRow): string {
  const data: RowData = {
    sourceIp: r.sourceIp,
    disposition: r.disposition,
    dkim: r.dkim,
    spf: r.spf,
    override: r.override,
    headerFrom: r.headerFrom,
    envelopeFrom: r.envelopeFrom,
    dkimResults: r.dkimResults,
    spfResult: r.spfResult,
    aboutReports: r.aboutReports,
  };
  return JSON.stringify(data);
}

function fromData(domain: string, day: string, record: string, data: string, count: number): DmarcRow | null {
  try {
    const d = JSON.parse(data) as RowData;
    if (typeof d.sourceIp !== 'string' || !d.spfResult || !Array.isArray(d.dkimResults)) return null;
    return {
      ...d,
      override: d.override === 'local_policy' ? 'local_policy' : null,
      aboutReports: d.aboutReports === true,
      policyDomain: domain,
      day,
      record,
      count: Number(count),
    };
  } catch {
    return null;
  }
}

/** The rows grouped by domain and day, for the per-report bound. */
function byReport(rows: readonly DmarcRow[]): Map<string, DmarcRow[]> {
  const m = new Map<string, DmarcRow[]>();
  for (const r of rows) {
    const k = `${r.policyDomain} ${r.day}`;
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return m;
}

const SQLITE_MIGRATIONS = [
  `CREATE TABLE dmarc_rows (
     domain TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,
     count INTEGER NOT NULL, PRIMARY KEY (domain, day, key)) WITHOUT ROWID;
   CREATE TABLE dmarc_policy (
     domain TEXT NOT NULL, day TEXT NOT NULL, record TEXT NOT NULL,
     PRIMARY KEY (domain, day)) WITHOUT ROWID;
   CREATE TABLE dmarc_mark (id INTEGER PRIMARY KEY CHECK (id = 1), day TEXT NOT NULL);`,
];

/** One machine: {state}/dmarc-reports.db. */
export class SqliteDmarcReportStore implements DmarcReportStore {
  readonly #db: DatabaseSync;

  constructor(path: string) {
    this.#db = openDatabase(path, { migrations: SQLITE_MIGRATIONS, pragmas: ['synchronous = NORMAL'] });
  }

  async add(rows: readonly DmarcRow[]): Promise<void> {
    if (rows.length === 0) return;
    const db = this.#db;
    const count = db.prepare('SELECT count(*) AS n FROM dmarc_rows WHERE domain = ? AND day = ?');
    const grow = db.prepare('UPDATE dmarc_rows SET count = count + ? WHERE domain = ? AND day = ? AND key = ?');
    const insert = db.prepare('INSERT INTO dmarc_rows (domain, day, key, data, count) VALUES (?, ?, ?, ?, ?)');
    const policy = db.prepare(
      `INSERT INTO dmarc_policy (domain, day, record) VALUES (?, ?, ?)
       ON CONFLICT (domain, day) DO UPDATE SET record = excluded.record`,
    );
    transaction(db, () => {
      for (const list of byReport(rows).values()) {
        const first = list[0] as DmarcRow;
        let n = Number((count.get(first.policyDomain, first.day) as { n: number }).n);
        for (const r of list) {
          const key = rowKey(r);
          if (Number(grow.run(r.count, r.policyDomain, r.day, key).changes) > 0) continue;
          if (n >= LIMITS.dmarcReports.maxRowsPerReport) continue;
          insert.run(r.policyDomain, r.day, key, rowData(r), r.count);
          n++;
        }
        policy.run(first.policyDomain, first.day, (list.at(-1) as DmarcRow).record);
      }
    });
  }

  async domains(day: string): Promise<string[]> {
    const rows = this.#db.prepare('SELECT DISTINCT domain FROM dmarc_rows WHERE day = ? ORDER BY domain').all(day) as {
      domain: string;
    }[];
    return rows.map((r) => r.domain);
  }

  async report(domain: string, day: string): Promise<DayReport | null> {
    const p = this.#db.prepare('SELECT record FROM dmarc_policy WHERE domain = ? AND day = ?').get(domain, day) as
      | { record: string }
      | undefined;
    if (!p) return null;
    const rows = this.#db
      .prepare('SELECT data, count FROM dmarc_rows WHERE domain = ? AND day = ? ORDER BY count DESC, key LIMIT ?')
      .all(domain, day, LIMITS.dmarcReports.maxRowsPerReport) as { data: string; count: number }[];
    const out = rows.map((r) => fromData(domain, day, p.record, r.data, r.count)).filter((r) => r !== null);
    return out.length > 0 ? { record: p.record, rows: out } : null;
  }

  async remove(domain: string, day: string): Promise<void> {
    transaction(this.#db, () => {
      this.#db.prepare('DELETE FROM dmarc_rows WHERE domain = ? AND day = ?').run(domain, day);
      this.#db.prepare('DELETE FROM dmarc_policy WHERE domain = ? AND day = ?').run(domain, day);
    });
  }

  async reportedUpTo(): Promise<string | null> {
    const r = this.#db.prepare('SELECT day FROM dmarc_mark WHERE id = 1').get() as { day: string } | undefined;
    return r?.day ?? null;
  }

  async markReported(day: string, keepFrom: string): Promise<void> {
    transaction(this.#db, () => {
      this.#db
        .prepare(
          `INSERT INTO dmarc_mark (id, day) VALUES (1, ?)
           ON CONFLICT (id) DO UPDATE SET day = max(day, excluded.day)`,
        )
        .run(day);
      const mark = (this.#db.prepare('SELECT day FROM dmarc_mark WHERE id = 1').get() as { day: string }).day;
      for (const table of ['dmarc_rows', 'dmarc_policy']) {
        this.#db.prepare(`DELETE FROM ${table} WHERE day <= ? OR day < ?`).run(mark, keepFrom);
      }
    });
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}

export const DMARC_REPORT_MIGRATIONS: readonly string[] = [
  `CREATE TABLE dmarc_rows (
     domain TEXT COLLATE "C" NOT NULL, day TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL,
     data TEXT NOT NULL, count INT8 NOT NULL, PRIMARY KEY (domain, day, key));
   CREATE TABLE dmarc_policy (
     domain TEXT COLLATE "C" NOT NULL, day TEXT COLLATE "C" NOT NULL, record TEXT NOT NULL,
     PRIMARY KEY (domain, day));
   CREATE TABLE dmarc_mark (id INT PRIMARY KEY CHECK (id = 1), day TEXT COLLATE "C" NOT NULL);`,
];

/** A cluster: every node's recorder adds to the same rows; one node sends (leader task). */
export class PostgresDmarcReportStore implements DmarcReportStore {
  readonly #db: Postgres;

  private constructor(db: Postgres) {
    this.#db = db;
  }

  /** Migrates the `dmarc_reports` component; the pool stays the caller's. */
  static async open(db: Postgres): Promise<PostgresDmarcReportStore> {
    await db.migrate('dmarc_reports', DMARC_REPORT_MIGRATIONS);
    return new PostgresDmarcReportStore(db);
  }

  async add(rows: readonly DmarcRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#db.tx(async (q: Queryable) => {
      for (const list of byReport(rows).values()) {
        const first = list[0] as DmarcRow;
        // Two nodes adding to one report take turns (the row bound is counted under the lock).
        await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`dmarc ${first.policyDomain} ${first.day}`]);
        const c = await q.query<{ n: number }>(
          'SELECT count(*)::int8 AS n FROM dmarc_rows WHERE domain = $1 AND day = $2',
          [first.policyDomain, first.day],
        );
        let n = Number(c.rows[0]?.n ?? 0);
        for (const r of list) {
          const key = rowKey(r);
          const grown = await q.query(
            'UPDATE dmarc_rows SET count = count + $1 WHERE domain = $2 AND day = $3 AND key = $4',
            [r.count, r.policyDomain, r.day, key],
          );
          if ((grown.rowCount ?? 0) > 0 || n >= LIMITS.dmarcReports.maxRowsPerReport) continue;
          await q.query('INSERT INTO dmarc_rows (domain, day, key, data, count) VALUES ($1, $2, $3, $4, $5)', [
            r.policyDomain,
            r.day,
            key,
            rowData(r),
            r.count,
          ]);
          n++;
        }
        await q.query(
          `INSERT INTO dmarc_policy (domain, day, record) VALUES ($1, $2, $3)
           ON CONFLICT (domain, day) DO UPDATE SET record = excluded.record`,
          [first.policyDomain, first.day, (list.at(-1) as DmarcRow).record],
        );
      }
    });
  }

  async domains(day: string): Promise<string[]> {
    const rows = await this.#db.rows<{ domain: string }>(
      'SELECT DISTINCT domain FROM dmarc_rows WHERE day = $1 ORDER BY domain',
      [day],
    );
    return rows.map((r) => r.domain);
  }

  async report(domain: string, day: string): Promise<DayReport | null> {
    const p = await this.#db.rows<{ record: string }>(
      'SELECT record FROM dmarc_policy WHERE domain = $1 AND day = $2',
      [domain, day],
    );
    const record = p[0]?.record;
    if (record === undefined) return null;
    const rows = await this.#db.rows<{ data: string; count: number }>(
      'SELECT data, count FROM dmarc_rows WHERE domain = $1 AND day = $2 ORDER BY count DESC, key LIMIT $3',
      [domain, day, LIMITS.dmarcReports.maxRowsPerReport],
    );
    const out = rows.map((r) => fromData(domain, day, record, r.data, r.count)).filter((r) => r !== null);
    return out.length > 0 ? { record, rows: out } : null;
  }

  async remove(domain: string, day: string): Promise<void> {
    await this.#db.tx(async (q) => {
      await q.query('DELETE FROM dmarc_rows WHERE domain = $1 AND day = $2', [domain, day]);
      await q.query('DELETE FROM dmarc_policy WHERE domain = $1 AND day = $2', [domain, day]);
    });
  }

  async reportedUpTo(): Promise<string | null> {
    const r = await this.#db.rows<{ day: string }>('SELECT day FROM dmarc_mark WHERE id = 1');
    return r[0]?.day ?? null;
  }

  async markReported(day: string, keepFrom: string): Promise<void> {
    await this.#db.tx(async (q) => {
      const r = await q.query<{ day: string }>(
        `INSERT INTO dmarc_mark (id, day) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET day = GREATEST(dmarc_mark.day, excluded.day) RETURNING day`,
        [day],
      );
      const mark = r.rows[0]?.day ?? day;
      await q.query('DELETE FROM dmarc_rows WHERE day <= $1 OR day < $2', [mark, keepFrom]);
      await q.query('DELETE FROM dmarc_policy WHERE day <= $1 OR day < $2', [mark, keepFrom]);
    });
  }

  async close(): Promise<void> {}
}

/** The report store: {state}/dmarc-reports.db, or the shared PostgreSQL (`db`). */
export async function openDmarcReportStore(o: {
  readonly file: string;
  readonly db: Postgres | null;
}): Promise<DmarcReportStore> {
  if (o.db) return PostgresDmarcReportStore.open(o.db);
  return new SqliteDmarcReportStore(o.file);
}
