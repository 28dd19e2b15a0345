// What every node does for ACME, whichever node renews (docs/cluster.md "ACME and the blocklist
// monitor across nodes"): answer the CA's validation requests from the store's pending
// challenges, and serve the store's current certificate.
//
// - ChallengeResponder: a validation request is answered from a read of the store started after
//   the request arrived, so an answer committed by the renewing node before the CA was told to
//   validate (acme-client calls challengeCreateFn, then completes the challenge, RFC 8555 §7.5.1)
//   is always found, whatever the notification's delay. Reads are coalesced: one in flight, and
//   the requests arriving meanwhile share the one queued behind it, so a client flooding
//   /.well-known/acme-challenge/ costs at most one query at a time per node. A failed read
//   answers "no such challenge" (404, or the tls-alpn-01 connection closed).
// - followAcmeCertificate: the TlsManager reloads when the store's certificate differs from the
//   one it serves: on a notification (`arcline_acme` "certificate"), after the listening session
//   came back (notifications of the time away are lost), and every LIMITS.acme.certificateCheckMs
//   as a fallback.

import tls from 'node:tls';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { Notifier } from '../db/notify.ts';
import type { AcmeStore, ChallengeKind, PendingChallenge } from './acme-store.ts';
import { ACME_CHANNEL } from './acme-store-pg.ts';
import { readCombinedText, type TlsManager } from './certs.ts';

/** What the listeners ask during a validation (web/routes.ts, web/server.ts). */
export interface AcmeChallenges {
  /** The key authorization for an http-01 token, or null (RFC 8555 §8.3). */
  httpChallenge(token: string): Promise<string | null>;
  /** The secure context with the acmeIdentifier certificate for `name`, or null (RFC 8737 §3). */
  alpnChallenge(name: string): Promise<tls.SecureContext | null>;
}

/** Coalesces calls of an async function: one run at a time; callers arriving during a run share
 *  the single run queued after it, so each caller's result comes from a run started after it
 *  called. */
export function coalesced(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  const start = (): Promise<void> => {
    running = fn().finally(() => {
      running = null;
    });
    return running;
  };
  return () => {
    if (!running) return start();
    if (!queued) {
      queued = running
        .catch(() => {})
        .then(() => {
          queued = null;
          return start();
        });
    }
    return queued;
  };
}

export class ChallengeResponder implements AcmeChallenges {
  readonly #store: Pick<AcmeStore, 'challenges'>;
  readonly #log: Logger | null;
  #pending = new Map<string, PendingChallenge>();
  /** Secure contexts of tls-alpn-01 answers, by name, made once per answer. */
  readonly #contexts = new Map<string, { value: string; context: tls.SecureContext }>();
  readonly #read: () => Promise<void>;

  constructor(store: Pick<AcmeStore, 'challenges'>, log: Logger | null = null) {
    this.#store = store;
    this.#log = log;
    this.#read = coalesced(async () => {
      const list = await this.#store.challenges(Date.now());
      this.#pending = new Map(list.map((c) => [`${c.kind} ${c.key}`, c]));
      for (const name of this.#contexts.keys()) {
        if (!this.#pending.has(`tls-alpn-01 ${name}`)) this.#contexts.delete(name);
      }
    });
  }

  async httpChallenge(token: string): Promise<string | null> {
    return (await this.#find('http-01', token))?.value ?? null;
  }

  async alpnChallenge(name: string): Promise<tls.SecureContext | null> {
    const n = name.toLowerCase();
    const c = await this.#find('tls-alpn-01', n);
    if (!c) return null;
    const known = this.#contexts.get(n);
    if (known?.value === c.value) return known.context;
    try {
      const context = tls.createSecureContext(readCombinedText(c.value, 'tls-alpn-01 answer'));
      this.#contexts.set(n, { value: c.value, context });
      return context;
    } catch (e) {
      this.#log?.warn({ name: n, err: errorMessage(e) }, 'ACME: unusable tls-alpn-01 answer in the store');
      return null;
    }
  }

  async #find(kind: ChallengeKind, key: string): Promise<PendingChallenge | null> {
    try {
      await this.#read();
    } catch (e) {
      this.#log?.warn({ err: errorMessage(e) }, 'ACME: cannot read the pending challenges');
      return null;
    }
    const c = this.#pending.get(`${kind} ${key}`);
    return c && c.expires > Date.now() ? c : null;
  }
}

export interface CertificateFollower {
  /** Reloads the TlsManager if the store's certificate is not the one it serves. */
  sync(): Promise<void>;
  close(): void;
}

/** Keeps `tls` serving the store's certificate (every node of a cluster; a node alone needs
 *  none: the renewal reloads its own TlsManager). */
export async function followAcmeCertificate(o: {
  readonly tls: Pick<TlsManager, 'current' | 'reload'>;
  readonly store: Pick<AcmeStore, 'certificate'>;
  readonly notifier: Notifier | null;
  readonly log: Logger;
  readonly intervalMs?: number;
}): Promise<CertificateFollower> {
  const sync = coalesced(async () => {
    const pair = await o.store.certificate();
    if (!pair || pair.cert === o.tls.current.cert) return;
    await o.tls.reload(o.log);
    o.log.info({}, 'ACME: serving the certificate renewed by the cluster');
  });
  const safe = () =>
    sync().catch((e: unknown) => o.log.warn({ err: errorMessage(e) }, 'ACME: cannot load the shared certificate'));
  const stops: (() => void)[] = [];
  if (o.notifier) {
    stops.push(await o.notifier.listen(ACME_CHANNEL, (p) => (p === 'certificate' ? void safe() : undefined)));
    stops.push(o.notifier.onResync(() => void safe()));
  }
  const timer = setInterval(() => void safe(), o.intervalMs ?? LIMITS.acme.certificateCheckMs);
  timer.unref();
  stops.push(() => clearInterval(timer));
  return {
    sync,
    close: () => {
      for (const s of stops) s();
    },
  };
}
