// Certificates from an ACME CA (RFC 8555) with acme-client: for the host name, the configured
// extra names, and mta-sts.<domain> / autoconfig.<domain> of every local domain.
//
// What it keeps is in an AcmeStore (acme-store.ts): files under {state}/acme/ on one node, the
// shared PostgreSQL in a cluster (acme-store-pg.ts; docs/cluster.md "ACME and the blocklist
// monitor across nodes").
// - Account: the key (ECDSA P-256), the account URL and the directory it belongs to, saved once
//   the CA created the account (RFC 8555 §7.3). Another directory_url gets a new account; an
//   account the CA no longer knows is dropped and made anew next time.
// - Certificate: the private key and the chain, replaced in one step ({state}/acme/certificate.pem
//   written atomically, 0600 in a 0700 directory; or one row). TlsManager (tls/certs.ts) reads
//   it; after an issuance `tls.reload()` hands it to every listener at once (the other nodes of a
//   cluster follow the store: acme-serve.ts followAcmeCertificate).
// - Challenges: the answers are put in the store before the CA is told to validate and removed
//   after; tls-alpn-01 (RFC 8737) is answered by the HTTPS listener through alpnChallenge(),
//   http-01 (RFC 8555 §8.3) by the HTTP listener through httpChallenge(), both reading the store
//   (acme-serve.ts ChallengeResponder), so any node of a cluster answers. acme-client's own
//   pre-check of a challenge is skipped: it would resolve our names through the system resolver
//   and reach us from the inside, which says nothing about what the CA sees (hairpin NAT).
// - Schedule (acme-schedule.ts): a check at start, every [acme] check_interval (jittered), on
//   SIGHUP (trigger()); a check compares the names needed now (a new domain) and the expiry with
//   the stored certificate. On one node start() keeps that schedule with a timer; in a cluster
//   acmeLeaderTask() runs the same loop as the leader task `acme` (db/leader.ts), on one node. A failure is counted (arcline_acme_failures_total), logged, and
//   retried after a jittered, doubling delay; the certificate in use stays.

import { X509Certificate } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import type tls from 'node:tls';
import acme from 'acme-client';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { acmeCertificateExpiry, acmeFailures, acmeIssued } from '../core/metrics.ts';
import type { LeaderTask } from '../db/leader.ts';
import {
  type CertFacts,
  certificateNames,
  checkDelay,
  nextWake,
  renewalDecision,
  retryDelay,
} from './acme-schedule.ts';
import { type AcmeChallenges, ChallengeResponder } from './acme-serve.ts';
import { type AcmeAccount, type AcmeStore, FileAcmeStore } from './acme-store.ts';
import { combinePair, type TlsManager } from './certs.ts';

export type { AcmeChallenges } from './acme-serve.ts';
export { acmeCertificateFile } from './acme-store.ts';

export type ChallengeType = 'tls-alpn-01' | 'http-01';

export interface AcmeSettings {
  readonly directoryUrl: string;
  readonly email: string;
  readonly extraNames: readonly string[];
  readonly renewBeforeMs: number;
  readonly challenges: readonly ChallengeType[];
  readonly checkIntervalMs: number;
  readonly retryInitialMs: number;
}

export interface AcmeDeps {
  readonly settings: AcmeSettings;
  readonly stateDir: string;
  /** Where the account, certificate and challenges live; default: files under stateDir. */
  readonly store?: AcmeStore;
  readonly hostname: string;
  /** The local domains, asked at every check. */
  readonly domains: () => Promise<readonly string[]>;
  readonly tls: Pick<TlsManager, 'reload'>;
  readonly log: Logger;
  readonly random?: () => number;
}

export class AcmeManager implements AcmeChallenges {
  readonly #deps: AcmeDeps;
  readonly #store: AcmeStore;
  readonly #responder: ChallengeResponder;
  readonly #random: () => number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #failures = 0;
  #stopped = false;
  /** While runAsLeader waits between checks: ends the wait (trigger, stop). */
  #kick: (() => void) | null = null;
  #leading = false;
  /** start()ed: the timer schedule of one node (not a leader task). */
  #started = false;
  #leaderCheck: Promise<number> | null = null;

  constructor(deps: AcmeDeps) {
    this.#deps = deps;
    this.#store =
      deps.store ?? new FileAcmeStore(deps.stateDir, (m) => deps.log.warn({ err: m }, 'ACME: account unusable'));
    this.#responder = new ChallengeResponder(this.#store, deps.log);
    this.#random = deps.random ?? Math.random;
    // A CA that accepts the connection and then says nothing must not hold a check forever
    // (axios defaults, the configuration acme-client documents through `acme.axios`). Its own
    // retries of a failed request (429, 5xx, Retry-After honoured) stay as the library sets them.
    acme.axios.defaults.timeout = LIMITS.acme.httpTimeoutMs;
  }

  httpChallenge(token: string): Promise<string | null> {
    return this.#responder.httpChallenge(token);
  }

  alpnChallenge(name: string): Promise<tls.SecureContext | null> {
    return this.#responder.alpnChallenge(name);
  }

  /** Runs the first check now, then keeps the schedule with a timer (one node). */
  start(): void {
    this.#started = true;
    this.#wake(0);
  }

  /** A check as soon as possible (SIGHUP: the domains may have changed). */
  trigger(): void {
    if (this.#kick) {
      this.#kick(); // the leader loop (runAsLeader) is waiting: wake it
      return;
    }
    if (this.#running || this.#leading)
      this.#again = true; // after the check in flight
    else if (this.#started) this.#wake(0); // never on a node that runs it as a leader task
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#kick?.();
  }

  /** The schedule as a leader task's run (db/leader.ts): a check now, then at the times the
   *  checks ask for, until `signal` fires. A check in flight when it fires is not awaited: its
   *  order ends or times out by itself (LIMITS.acme.requestTimeoutMs) and its result, if any,
   *  is in the store for the next leader. */
  async runAsLeader(signal: AbortSignal): Promise<void> {
    // A check left running by the previous run here (its signal fired mid-order) ends first:
    // never two orders of one node at once.
    await this.#leaderCheck;
    this.#leading = true;
    try {
      while (!signal.aborted && !this.#stopped) {
        this.#again = false;
        const check = this.#check();
        this.#leaderCheck = check;
        let delayMs = await untilAborted(check, signal);
        if (delayMs === null) return;
        if (this.#again) delayMs = 0; // trigger() during the check
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            this.#kick = null;
            resolve();
          };
          const timer = setTimeout(done, delayMs);
          timer.unref(); // the runner's stop ends the wait; the process need not stay for it
          this.#kick = done;
          signal.addEventListener('abort', done, { once: true });
        });
      }
    } finally {
      this.#leading = false;
    }
  }

  #wake(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.#check()
        .then((next) => {
          if (!this.#again) this.#wake(next);
        })
        .finally(() => {
          this.#running = null;
          if (this.#again) {
            this.#again = false;
            this.#wake(0);
          }
        });
    }, delayMs);
    this.#timer.unref();
  }

  /** One check, and perhaps an order; returns the delay until the next check. */
  async #check(): Promise<number> {
    const { settings, log } = this.#deps;
    let names: string[] = [];
    try {
      names = certificateNames(this.#deps.hostname, settings.extraNames, await this.#deps.domains());
      const facts = await this.#facts();
      acmeCertificateExpiry.set(facts ? Math.floor(facts.notAfter / 1000) : 0);
      const decision = renewalDecision(Date.now(), facts, names, settings.renewBeforeMs);
      if (!decision.renew) {
        this.#failures = 0;
        return nextWake(Date.now(), decision.at, checkDelay(settings.checkIntervalMs, this.#random()));
      }
      log.info({ names, reason: decision.reason }, 'ACME: requesting a certificate');
      const issued = await withTimeout(this.#issue(names), LIMITS.acme.requestTimeoutMs);
      if (this.#stopped) return 0;
      await this.#deps.tls.reload(log);
      this.#failures = 0;
      acmeIssued.inc();
      acmeCertificateExpiry.set(Math.floor(issued.notAfter / 1000));
      log.info(
        { names, not_after: new Date(issued.notAfter).toISOString(), serial: issued.serial },
        'ACME certificate issued',
      );
      return 0; // the next check schedules the renewal of the new certificate
    } catch (e) {
      if (this.#stopped) return 0;
      this.#failures++;
      acmeFailures.inc();
      const delay = retryDelay(this.#failures, settings.retryInitialMs, settings.checkIntervalMs, this.#random());
      log.error(
        { err: errorMessage(e), names, failures: this.#failures, retry_in_ms: delay },
        'ACME certificate request failed; keeping the certificate in use',
      );
      return delay;
    }
  }

  /** The stored certificate, or null (none yet, or unreadable: then a new one is due). */
  async #facts(): Promise<CertFacts | null> {
    try {
      const pair = await this.#store.certificate();
      return pair ? certFacts(pair.cert) : null;
    } catch {
      return null;
    }
  }

  /** The stored account of this directory, or a new key (the account is made by auto()). */
  async #account(): Promise<AcmeAccount> {
    const directoryUrl = this.#deps.settings.directoryUrl;
    const known = await this.#store.account(directoryUrl);
    if (known) return known;
    return { directoryUrl, url: '', key: (await acme.crypto.createPrivateEcdsaKey()).toString() };
  }

  /** client.auto(), keeping the account it registers, and dropping a stored account the CA
   *  refuses (RFC 8555 §7.3: accountDoesNotExist, unauthorized), so the next try makes one. */
  async #auto(client: acme.Client, account: AcmeAccount, opts: acme.ClientAutoOptions): Promise<string> {
    try {
      return (await client.auto(opts)).toString();
    } catch (e) {
      if (account.url && /account/i.test(errorMessage(e))) {
        await this.#store.dropAccount(account.directoryUrl);
        this.#deps.log.warn({ err: errorMessage(e) }, 'ACME: the CA refused the stored account; a new one comes next');
      }
      throw e;
    } finally {
      let url = '';
      try {
        url = client.getAccountUrl();
      } catch {
        // no account was registered
      }
      if (url && url !== account.url) await this.#store.saveAccount({ ...account, url });
    }
  }

  /** One order (RFC 8555 §7.4): account, authorizations through our challenges, finalize. */
  async #issue(names: readonly string[]): Promise<CertFacts & { serial: string }> {
    const { settings } = this.#deps;
    // acme-client reports a network error as a TypeError of its own (its retry interceptor reads
    // the missing response); one plain request first gives the operator the real reason.
    await probe(settings.directoryUrl);
    const account = await this.#account();
    const client = new acme.Client({
      directoryUrl: settings.directoryUrl,
      accountKey: account.key,
      ...(account.url ? { accountUrl: account.url } : {}),
      backoffMin: LIMITS.acme.pollMinMs,
      backoffMax: LIMITS.acme.pollMaxMs,
      backoffAttempts: LIMITS.acme.pollAttempts,
    });
    const certKey = await acme.crypto.createPrivateEcdsaKey();
    const cn = this.#deps.hostname.length <= 64 ? { commonName: this.#deps.hostname.toLowerCase() } : {};
    const [, csr] = await acme.crypto.createCsr({ ...cn, altNames: [...names] }, certKey);
    const alpnKey = await acme.crypto.createPrivateEcdsaKey();
    const expires = () => Date.now() + LIMITS.acme.challengeTtlMs;
    const chain = await this.#auto(client, account, {
      csr,
      ...(settings.email ? { email: settings.email } : {}),
      // Configuring a directory_url is the operator's acceptance of that CA's terms (docs/acme.md).
      termsOfServiceAgreed: true,
      skipChallengeVerification: true,
      challengePriority: [...settings.challenges],
      // The answer is in the store (committed: on PostgreSQL every node reads it) before this
      // returns, and acme-client tells the CA to validate only after (RFC 8555 §7.5.1).
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        const name = authz.identifier.value.toLowerCase();
        const type: string = challenge.type; // acme-client's types predate tls-alpn-01
        if (type === 'http-01' && settings.challenges.includes('http-01')) {
          await this.#store.putChallenge({
            kind: 'http-01',
            key: challenge.token,
            value: keyAuthorization,
            expires: expires(),
          });
        } else if (type === 'tls-alpn-01' && settings.challenges.includes('tls-alpn-01')) {
          const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, alpnKey);
          const value = combinePair({ key: key.toString(), cert: cert.toString() });
          await this.#store.putChallenge({ kind: 'tls-alpn-01', key: name, value, expires: expires() });
        } else {
          throw new Error(`the CA offers no challenge of the configured types for ${name}`);
        }
      },
      challengeRemoveFn: async (authz, challenge) => {
        if (challenge.type === 'http-01') await this.#store.removeChallenge('http-01', challenge.token);
        else await this.#store.removeChallenge('tls-alpn-01', authz.identifier.value.toLowerCase());
      },
    });
    const cert = chain;
    const facts = certFacts(cert);
    await this.#store.saveCertificate({ key: certKey.toString(), cert });
    return { ...facts, serial: new X509Certificate(cert).serialNumber };
  }
}

/** The ACME renewal as the leader task `acme` (docs/cluster.md "Leader tasks"): the manager's
 *  schedule runs on the node holding the task's lock, and moves with it. The manager must be
 *  built on the shared store (openAcmeStore with the pool), and not start()ed. */
export function acmeLeaderTask(manager: Pick<AcmeManager, 'runAsLeader'>): LeaderTask {
  return { name: 'acme', run: (signal) => manager.runAsLeader(signal) };
}

/** `p`'s value, or null as soon as `signal` fires (p is left to settle alone). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | null> {
  if (signal.aborted) return Promise.resolve(null);
  return new Promise<T | null>((resolve, reject) => {
    const onAbort = () => resolve(null);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** GET of the directory (RFC 8555 §7.1.1) with the HTTP timeout: throws the network error. */
function probe(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsGet : httpGet)(url, { timeout: LIMITS.acme.httpTimeoutMs }, (res) => {
      res.resume();
      if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) resolve();
      else reject(new Error(`ACME directory ${url} answered HTTP ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error(`ACME directory ${url}: no answer`)));
    req.on('error', (e) => reject(new Error(`cannot reach the ACME directory ${url}: ${errorMessage(e)}`)));
  });
}

/** Validity and DNS names of the first certificate of a PEM chain. */
export function certFacts(pem: string): CertFacts {
  const x = new X509Certificate(pem);
  const names = (x.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4).toLowerCase());
  return { notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo), names };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the ACME CA within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
