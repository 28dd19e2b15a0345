// The one login path of every protocol: IMAP LOGIN and AUTHENTICATE PLAIN, submission AUTH PLAIN
// and LOGIN all call Authenticator.login({ service, ip, username, password }). In order:
//   1. canonical identity: the directory's loginName() maps every spelling of an account to it
//      (or to null: refused before any lookup), and everything below is keyed on the result;
//   2. throttling (throttle.ts): the delay, if any, is taken here, before the verification;
//      a failure is moreover answered failure_delay after its verification began (Dovecot's
//      auth_failure_delay; it also hides how long the verification took);
//   3. the stored hash is read now (a CLI change applies at once), the verified-credential cache
//      is asked (cache.ts), and only then a real verification runs, off the event loop and bounded
//      (hasher.ts); an unknown user costs a dummy verification of the same scheme (no user
//      enumeration by timing);
//   4. one log line and one metric per outcome.
// Protocol code keeps only its wire replies.
//
// Log lines (JSON, pino; stable: fail2ban/CrowdSec filters match them, docs/security.md):
//   msg "auth failed"   info  service, ip, user (canonical, or the name as sent when invalid), reason
//                             (password | unknown-user | invalid-name | bad-password-length)
//   msg "auth refused"  warn  service, ip, user, failures   (an attacking pair, refused unverified)
//   msg "auth delayed"  debug service, ip, user, delay_ms
//   msg "auth busy"     warn  service, ip, user             (verification queue full)
//   msg "auth ok"       info  service, ip, user, cached

import { setTimeout as sleep } from 'node:timers/promises';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { authAttempts, authFailures, logins } from '../core/metrics.ts';
import { type HashOptions, verifyDummy, verifyPasswordHash } from '../directory/password.ts';
import { type Directory, type Principal, principalOf } from '../directory/types.ts';
import { CredentialCache } from './cache.ts';
import { HasherBusy, HashQueue } from './hasher.ts';
import { LoginThrottle } from './throttle.ts';

export type AuthService = 'imap' | 'submission' | 'http' | 'managesieve';

export interface LoginRequest {
  readonly service: AuthService;
  readonly ip: string;
  readonly username: string;
  readonly password: string;
  /** SASL mechanism or LOGIN, for the log. */
  readonly mechanism?: string;
  /** Connection id, for the log. */
  readonly conn?: string;
}

export type LoginResult =
  | { readonly ok: true; readonly principal: Principal }
  /** failed: wrong credentials; throttled: refused unverified (too many failures of this pair);
   *  busy: too many verifications waiting (temporary). */
  | { readonly ok: false; readonly reason: 'failed' | 'throttled' | 'busy' };

export interface AuthenticatorOptions {
  readonly directory: Pick<Directory, 'loginName' | 'passwordHash'>;
  readonly log: Logger;
  /** The scheme of new hashes: the dummy verification for unknown users costs the same. */
  readonly hashing: HashOptions;
  /** Every failure is answered this late (not for trusted clients). */
  readonly failureDelayMs?: number;
  readonly failureWindowMs?: number;
  readonly maxPairDelayMs?: number;
  readonly maxAddressDelayMs?: number;
  readonly trusted?: (ip: string) => boolean;
  readonly cacheSize?: number;
  readonly cacheTtlMs?: number;
  readonly maxPending?: number;
  /** Verifications at once; 0: one per core. */
  readonly concurrency?: number;
  /** Told of every failed or refused login (the auto-ban counts them, defense/bans.ts). */
  readonly onFailure?: (ip: string) => void;
  /** Told of every successful login (an owner's network is never banned). */
  readonly onSuccess?: (ip: string) => void;
}

export class Authenticator {
  readonly #dir: AuthenticatorOptions['directory'];
  readonly #log: Logger;
  readonly #hashing: HashOptions;
  readonly #failureDelayMs: number;
  readonly #trusted: (ip: string) => boolean;
  readonly #onFailure: (ip: string) => void;
  readonly #onSuccess: (ip: string) => void;
  readonly throttle: LoginThrottle;
  readonly cache: CredentialCache;
  readonly hasher: HashQueue;

  constructor(opts: AuthenticatorOptions) {
    const A = LIMITS.auth;
    this.#dir = opts.directory;
    this.#log = opts.log;
    this.#hashing = opts.hashing;
    this.#failureDelayMs = opts.failureDelayMs ?? A.defaultFailureDelayMs;
    this.#trusted = opts.trusted ?? (() => false);
    this.#onFailure = opts.onFailure ?? (() => {});
    this.#onSuccess = opts.onSuccess ?? (() => {});
    this.throttle = new LoginThrottle({
      failureWindowMs: opts.failureWindowMs ?? A.defaultFailureWindowMs,
      maxPairDelayMs: opts.maxPairDelayMs ?? A.defaultMaxPairDelayMs,
      maxAddressDelayMs: opts.maxAddressDelayMs ?? A.defaultMaxAddressDelayMs,
      trusted: this.#trusted,
    });
    this.cache = new CredentialCache({
      size: opts.cacheSize ?? A.defaultCacheSize,
      ttlMs: opts.cacheTtlMs ?? A.defaultCacheTtlMs,
    });
    this.hasher = new HashQueue({
      concurrency: opts.concurrency ?? 0,
      maxPending: opts.maxPending ?? A.defaultMaxPendingVerifications,
    });
  }

  async login(req: LoginRequest): Promise<LoginResult> {
    const { service, ip } = req;
    const account = this.#dir.loginName(req.username);
    // Unparsable names are logged as sent (bounded; pino escapes them as JSON strings).
    const user = account ?? req.username.slice(0, 100);
    const fields = { service, ip, user, ...(req.conn ? { conn: req.conn } : {}) };
    const gate = this.throttle.gate(ip, account);
    if (gate.kind === 'refuse') {
      this.#log.warn({ ...fields, failures: gate.pairFailures }, 'auth refused');
      authAttempts.inc({ service, result: 'refused' });
      countLogin(service, req.mechanism, 'refused');
      this.#onFailure(ip);
      return { ok: false, reason: 'throttled' };
    }
    if (gate.waitMs > 0) {
      this.#log.debug({ ...fields, delay_ms: gate.waitMs }, 'auth delayed');
      await sleep(gate.waitMs);
    }
    const started = performance.now();
    try {
      const verdict = await this.#check(account, req.password);
      if (verdict.ok) {
        this.throttle.succeeded(ip, verdict.principal.accountId);
        this.#onSuccess(ip);
        this.#log.info({ ...fields, method: req.mechanism, cached: verdict.cached }, 'auth ok');
        authAttempts.inc({ service, result: verdict.cached ? 'ok_cached' : 'ok' });
        countLogin(service, req.mechanism, 'ok');
        return { ok: true, principal: verdict.principal };
      }
      this.throttle.failed(ip, account);
      this.#log.info({ ...fields, method: req.mechanism, reason: verdict.reason }, 'auth failed');
      authAttempts.inc({ service, result: 'failed' });
      authFailures.inc({ service });
      countLogin(service, req.mechanism, 'failed');
      this.#onFailure(ip);
      // Every failure is answered failure_delay after its verification began, whatever that
      // took: an unknown user (dummy of the configured scheme), a wrong password against an old
      // bcrypt-12 hash and an invalid name all look alike from outside.
      const left = this.#failureDelayMs - (performance.now() - started);
      if (left > 0 && !this.#trusted(ip)) await sleep(left);
      return { ok: false, reason: 'failed' };
    } catch (e) {
      if (!(e instanceof HasherBusy)) throw e;
      this.#log.warn(fields, 'auth busy');
      authAttempts.inc({ service, result: 'busy' });
      countLogin(service, req.mechanism, 'busy');
      return { ok: false, reason: 'busy' };
    }
  }

  async #check(
    account: AccountId | null,
    password: string,
  ): Promise<{ ok: true; principal: Principal; cached: boolean } | { ok: false; reason: string }> {
    if (account === null) return { ok: false, reason: 'invalid-name' };
    const bytes = Buffer.byteLength(password);
    if (bytes === 0 || bytes > LIMITS.auth.maxPasswordBytes) return { ok: false, reason: 'bad-password-length' };
    const stored = await this.#dir.passwordHash(account);
    if (stored === null) {
      await this.hasher.run(() => verifyDummy(password, this.#hashing));
      this.cache.forget(account);
      return { ok: false, reason: 'unknown-user' };
    }
    if (this.cache.hit(account, stored, password)) return { ok: true, principal: principalOf(account), cached: true };
    if (!(await this.hasher.run(() => verifyPasswordHash(stored, password)))) return { ok: false, reason: 'password' };
    this.cache.put(account, stored, password);
    return { ok: true, principal: principalOf(account), cached: false };
  }

  /** Forgets what is cached for an account (its password changed or it was deleted here). */
  forget(account: AccountId): void {
    this.cache.forget(account);
  }
}

/** arcline_logins_total: the mechanism label is PLAIN, LOGIN or other (a closed set). */
function countLogin(service: string, mechanism: string | undefined, result: string): void {
  const m = mechanism === 'PLAIN' || mechanism === 'LOGIN' ? mechanism : 'other';
  logins.inc({ service, mechanism: m, result });
}
