// The ACME store on PostgreSQL (component `acme`; docs/cluster.md "ACME and the blocklist
// monitor across nodes"): one node renews (the leader task `acme`), the CA's validation request
// may reach any node, every node serves the certificate. Same AcmeStore contract as the files
// of acme-store.ts (test/tls/acme-store-contract.ts).
//
// - A saved certificate and a new challenge answer are announced on the channel `arcline_acme`
//   (payload "certificate" / "challenge") inside their transaction, so a node hears of them
//   only once they can be read (db/notify.ts). Payloads carry nothing but the word: a node reads
//   the table, never the payload (anyone who can connect can NOTIFY).
// - The private keys (account key, certificate key) are protected as the DKIM keys are: the
//   tables belong to arcline's role and the migration revokes every privilege of PUBLIC.
// - Expired challenge rows are never served (`expires` compared with the caller's clock, set by
//   the leader's: keep the nodes' clocks synchronised, as docs/cluster.md asks) and are deleted
//   when the next one is put.

import { LIMITS } from '../core/limits.ts';
import { notify } from '../db/notify.ts';
import type { Postgres } from '../db/postgres.ts';
import type { AcmeAccount, AcmeStore, ChallengeKind, PendingChallenge } from './acme-store.ts';
import { checkPair, type TlsPair } from './certs.ts';

/** The channel of ACME changes: "certificate" or "challenge". */
export const ACME_CHANNEL = 'arcline_acme';

export const ACME_MIGRATIONS: readonly string[] = [
  `CREATE TABLE acme_account (
     directory_url TEXT COLLATE "C" PRIMARY KEY,
     url TEXT NOT NULL,
     key_pem TEXT NOT NULL,
     updated INT8 NOT NULL);
   CREATE TABLE acme_certificate (
     id INT PRIMARY KEY CHECK (id = 1),
     key_pem TEXT NOT NULL,
     cert_pem TEXT NOT NULL,
     updated INT8 NOT NULL);
   CREATE TABLE acme_challenge (
     kind TEXT NOT NULL CHECK (kind IN ('http-01', 'tls-alpn-01')),
     key TEXT COLLATE "C" NOT NULL,
     value TEXT NOT NULL,
     expires INT8 NOT NULL,
     PRIMARY KEY (kind, key));
   REVOKE ALL ON acme_account FROM PUBLIC;
   REVOKE ALL ON acme_certificate FROM PUBLIC;
   REVOKE ALL ON acme_challenge FROM PUBLIC;`,
];

export class PostgresAcmeStore implements AcmeStore {
  readonly #db: Postgres;

  private constructor(db: Postgres) {
    this.#db = db;
  }

  /** Migrates the `acme` component; the pool stays the caller's. */
  static async open(db: Postgres): Promise<PostgresAcmeStore> {
    await db.migrate('acme', ACME_MIGRATIONS);
    return new PostgresAcmeStore(db);
  }

  async account(directoryUrl: string): Promise<AcmeAccount | null> {
    const r = await this.#db.rows<{ url: string; key_pem: string }>(
      'SELECT url, key_pem FROM acme_account WHERE directory_url = $1',
      [directoryUrl],
    );
    const row = r[0];
    return row ? { directoryUrl, url: row.url, key: row.key_pem } : null;
  }

  async saveAccount(a: AcmeAccount): Promise<void> {
    await this.#db.query(
      `INSERT INTO acme_account (directory_url, url, key_pem, updated) VALUES ($1, $2, $3, $4)
       ON CONFLICT (directory_url) DO UPDATE SET url = EXCLUDED.url, key_pem = EXCLUDED.key_pem,
         updated = EXCLUDED.updated`,
      [a.directoryUrl, a.url, a.key, Date.now()],
    );
  }

  async dropAccount(directoryUrl: string): Promise<void> {
    await this.#db.query('DELETE FROM acme_account WHERE directory_url = $1', [directoryUrl]);
  }

  async certificate(): Promise<TlsPair | null> {
    const r = await this.#db.rows<{ key_pem: string; cert_pem: string }>(
      'SELECT key_pem, cert_pem FROM acme_certificate WHERE id = 1',
    );
    const row = r[0];
    if (!row) return null;
    const pair = { key: row.key_pem, cert: row.cert_pem };
    checkPair(pair, 'acme_certificate', 'acme_certificate');
    return pair;
  }

  async saveCertificate(pair: TlsPair): Promise<void> {
    checkPair(pair, 'the new certificate', 'its key');
    await this.#db.tx(async (q) => {
      await q.query(
        `INSERT INTO acme_certificate (id, key_pem, cert_pem, updated) VALUES (1, $1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET key_pem = EXCLUDED.key_pem, cert_pem = EXCLUDED.cert_pem,
           updated = EXCLUDED.updated`,
        [pair.key, pair.cert, Date.now()],
      );
      await notify(q, ACME_CHANNEL, 'certificate');
    });
  }

  async putChallenge(c: PendingChallenge): Promise<void> {
    await this.#db.tx(async (q) => {
      await q.query('DELETE FROM acme_challenge WHERE expires <= $1', [Date.now()]);
      await q.query(
        `INSERT INTO acme_challenge (kind, key, value, expires) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires`,
        [c.kind, c.key, c.value, c.expires],
      );
      await notify(q, ACME_CHANNEL, 'challenge');
    });
  }

  async removeChallenge(kind: ChallengeKind, key: string): Promise<void> {
    await this.#db.query('DELETE FROM acme_challenge WHERE kind = $1 AND key = $2', [kind, key]);
  }

  async challenges(now: number): Promise<readonly PendingChallenge[]> {
    const r = await this.#db.rows<{ kind: ChallengeKind; key: string; value: string; expires: number }>(
      'SELECT kind, key, value, expires FROM acme_challenge WHERE expires > $1 ORDER BY kind, key LIMIT $2',
      [now, LIMITS.acme.maxPendingChallenges],
    );
    return r.map((x) => ({ kind: x.kind, key: x.key, value: x.value, expires: x.expires }));
  }
}
