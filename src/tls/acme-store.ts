// Where ACME keeps what it needs between checks and what the listeners serve (docs/acme.md;
// docs/cluster.md "ACME and the blocklist monitor across nodes"): the account of each CA
// directory (key and URL, RFC 8555 §7.3), the current certificate with its private key, and the
// answers of the challenges of an order in flight (http-01 token -> key authorization, RFC 8555
// §8.3; tls-alpn-01 name -> acmeIdentifier certificate, RFC 8737 §3), each with an expiry.
//
// Two sides behind one interface (test/tls/acme-store-contract.ts runs against both):
// - files, for one node (FileAcmeStore, today's layout): {state}/acme/account.json and
//   {state}/acme/certificate.pem (key then chain in one file, replaced atomically, 0600 in a
//   0700 directory); challenges in memory, since the node that orders is the one the CA reaches;
// - PostgreSQL, for a cluster (acme-store-pg.ts, component `acme`): the renewal runs on one node
//   (a leader task) while the CA's validation may reach any node, and every node serves the
//   certificate.

import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import { PRIVATE_DIR_MODE, writePrivateFileAtomic } from '../core/private-files.ts';
import type { Postgres } from '../db/postgres.ts';
import { PostgresAcmeStore } from './acme-store-pg.ts';
import { checkPair, combinePair, readCombined, type TlsPair } from './certs.ts';

export type ChallengeKind = 'http-01' | 'tls-alpn-01';

export interface AcmeAccount {
  readonly directoryUrl: string;
  /** Empty until the CA created the account. */
  readonly url: string;
  /** PEM of the account key (ECDSA P-256). */
  readonly key: string;
}

export interface PendingChallenge {
  readonly kind: ChallengeKind;
  /** http-01: the token; tls-alpn-01: the name, lower-cased. */
  readonly key: string;
  /** http-01: the key authorization; tls-alpn-01: the challenge certificate's key then
   *  certificate (combinePair). */
  readonly value: string;
  /** Epoch ms after which it is not served (LIMITS.acme.challengeTtlMs after it was put). */
  readonly expires: number;
}

export interface AcmeStore {
  /** The account made with this directory, or null (none, or unreadable: a new one is made). */
  account(directoryUrl: string): Promise<AcmeAccount | null>;
  saveAccount(a: AcmeAccount): Promise<void>;
  /** Forgets the account of this directory (the CA refused it). */
  dropAccount(directoryUrl: string): Promise<void>;
  /** The current certificate, or null when there is none yet; throws when one is stored but
   *  unusable (the key does not match). */
  certificate(): Promise<TlsPair | null>;
  /** Replaces the certificate (refused, the old one kept, when the key is not the
   *  certificate's); on PostgreSQL every node is told (NOTIFY). */
  saveCertificate(pair: TlsPair): Promise<void>;
  /** Adds or replaces a pending answer; on PostgreSQL every node is told. */
  putChallenge(c: PendingChallenge): Promise<void>;
  removeChallenge(kind: ChallengeKind, key: string): Promise<void>;
  /** The pending answers not expired at `now` (at most LIMITS.acme.maxPendingChallenges). */
  challenges(now: number): Promise<readonly PendingChallenge[]>;
}

/** {state}/acme/certificate.pem: TlsManager reads it from there (TlsSource.acmeFile). */
export function acmeCertificateFile(stateDir: string): string {
  return join(stateDir, 'acme', 'certificate.pem');
}

interface AccountFile {
  readonly directory_url: string;
  readonly url: string;
  readonly key: string;
}

/** One node: files under {state}/acme/, challenges in this process's memory. */
export class FileAcmeStore implements AcmeStore {
  readonly #stateDir: string;
  readonly #dir: string;
  readonly #challenges = new Map<string, PendingChallenge>();
  readonly #onWarn: (msg: string) => void;

  /** `onWarn`: told of an account file that cannot be read (a new account will be made). */
  constructor(stateDir: string, onWarn: (msg: string) => void = () => {}) {
    this.#stateDir = stateDir;
    this.#dir = join(stateDir, 'acme');
    this.#onWarn = onWarn;
  }

  async account(directoryUrl: string): Promise<AcmeAccount | null> {
    try {
      const a = JSON.parse(await readFile(join(this.#dir, 'account.json'), 'utf8')) as AccountFile;
      if (a.directory_url === directoryUrl && typeof a.key === 'string' && typeof a.url === 'string') {
        return { directoryUrl, url: a.url, key: a.key };
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#onWarn(`unreadable account.json (${errorMessage(e)}); a new account will be made`);
      }
    }
    return null;
  }

  async saveAccount(a: AcmeAccount): Promise<void> {
    const file: AccountFile = { directory_url: a.directoryUrl, url: a.url, key: a.key };
    await mkdir(this.#dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await writePrivateFileAtomic(join(this.#dir, 'account.json'), `${JSON.stringify(file, null, 2)}\n`);
  }

  async dropAccount(directoryUrl: string): Promise<void> {
    if (await this.account(directoryUrl)) await rm(join(this.#dir, 'account.json'), { force: true });
  }

  async certificate(): Promise<TlsPair | null> {
    try {
      return await readCombined(acmeCertificateFile(this.#stateDir));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async saveCertificate(pair: TlsPair): Promise<void> {
    checkPair(pair, 'the new certificate', 'its key');
    await mkdir(this.#dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await writePrivateFileAtomic(acmeCertificateFile(this.#stateDir), combinePair(pair));
  }

  async putChallenge(c: PendingChallenge): Promise<void> {
    if (this.#challenges.size >= LIMITS.acme.maxPendingChallenges) this.#expire(Date.now());
    this.#challenges.set(`${c.kind} ${c.key}`, c);
  }

  async removeChallenge(kind: ChallengeKind, key: string): Promise<void> {
    this.#challenges.delete(`${kind} ${key}`);
  }

  async challenges(now: number): Promise<readonly PendingChallenge[]> {
    this.#expire(now);
    return [...this.#challenges.values()].slice(0, LIMITS.acme.maxPendingChallenges);
  }

  #expire(now: number): void {
    for (const [k, c] of this.#challenges) if (c.expires <= now) this.#challenges.delete(k);
  }
}

/** The node's ACME store: files under `stateDir`, or the shared PostgreSQL (`db`, migrated
 *  here, closed by its owner) in a cluster. */
export async function openAcmeStore(o: {
  readonly stateDir: string;
  readonly db: Postgres | null;
  readonly onWarn?: (msg: string) => void;
}): Promise<AcmeStore> {
  if (o.db) return PostgresAcmeStore.open(o.db);
  return new FileAcmeStore(o.stateDir, o.onWarn);
}
