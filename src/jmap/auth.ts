// Who a JMAP request is from (docs/jmap.md "Authentication"): HTTP Basic (RFC 7617) with the
// user's password through the Authenticator (the same canonical names, throttling, ban
// offences and log lines as IMAP, service "http"), or `Authorization: Bearer` with an admin API
// token whose role is user:ADDR (admin/access.ts; `arcline token add --role user:ADDR`, or a
// self-service login session). Other tokens (admin, readonly, domain) name no mailbox and are
// refused. Plain HTTP is answered only from this machine (web/server.ts applies the same rule
// to /api/): passwords and tokens never cross the network in clear.

import { setTimeout as sleep } from 'node:timers/promises';
import type { TokenInfo } from '../admin/access.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';

export interface JmapAuthDeps {
  readonly authenticator: Pick<Authenticator, 'login' | 'throttle'>;
  /** The admin API's token store; null: Bearer is not offered. */
  readonly tokens: { verify(bearer: string): Promise<TokenInfo | null> } | null;
  /** The canonical account of a user address (Directory.loginName). */
  readonly loginName: (name: string) => AccountId | null;
  /** Whether the user exists and is enabled (a token outlives neither). */
  readonly userEnabled: (address: string) => Promise<boolean>;
  readonly log: Logger;
}

export type AuthResult =
  | { readonly ok: true; readonly account: AccountId }
  | { readonly ok: false; readonly status: 401 | 429 | 503; readonly detail: string };

const BASIC = /^Basic ([A-Za-z0-9+/]+={0,2})$/i;
const BEARER = /^Bearer ([!-~]{1,200})$/i;
const TOKEN_ID = /^arc_([0-9a-f]{16})_/;

/** The challenge of a 401 (RFC 9110 §11.6.1): Basic, and Bearer when tokens are offered. */
export function challenge(bearer: boolean): string {
  return `Basic realm="arcline JMAP", charset="UTF-8"${bearer ? ', Bearer realm="arcline JMAP"' : ''}`;
}

export async function authenticate(deps: JmapAuthDeps, header: string | undefined, ip: string): Promise<AuthResult> {
  if (header === undefined || header.length > LIMITS.jmap.maxAuthorizationBytes)
    return { ok: false, status: 401, detail: 'authentication required' };
  const basic = BASIC.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { ok: false, status: 401, detail: 'malformed Basic credentials' };
    const r = await deps.authenticator.login({
      service: 'http',
      ip,
      username: decoded.slice(0, colon),
      password: decoded.slice(colon + 1),
      mechanism: 'BASIC',
    });
    if (r.ok) return { ok: true, account: r.principal.accountId };
    if (r.reason === 'throttled') return { ok: false, status: 429, detail: 'too many failed logins; try later' };
    if (r.reason === 'busy') return { ok: false, status: 503, detail: 'busy; try again' };
    return { ok: false, status: 401, detail: 'wrong user name or password' };
  }
  const bearer = BEARER.exec(header);
  if (bearer && deps.tokens) {
    const token = await deps.tokens.verify(bearer[1] as string);
    if (token && token.role.kind === 'user' && (await deps.userEnabled(token.role.user))) {
      const account = deps.loginName(token.role.user);
      if (account) return { ok: true, account };
    }
    // As the admin API does (api/auth.ts): bad tokens are slowed, then refused, per address,
    // and logged like failed logins (the same fail2ban filter).
    const user = TOKEN_ID.exec(bearer[1] as string)?.[1] ?? '(token)';
    const gate = deps.authenticator.throttle.gate(ip, null);
    if (gate.kind === 'refuse') {
      deps.log.warn({ service: 'http', ip, user, failures: gate.pairFailures }, 'auth refused');
      return { ok: false, status: 429, detail: 'too many failed authentications; try later' };
    }
    if (gate.waitMs > 0) await sleep(gate.waitMs);
    deps.authenticator.throttle.failed(ip, null);
    deps.log.info({ service: 'http', ip, user, reason: 'token' }, 'auth failed');
    return { ok: false, status: 401, detail: 'the token is not valid for JMAP (a user:ADDR token is needed)' };
  }
  return { ok: false, status: 401, detail: 'unsupported authorization scheme' };
}
