// The JMAP Session resource (RFC 8620 §2, GET /.well-known/jmap): capabilities with the core
// limits, the user's one account, the URLs (RFC 6570 level 1 templates), and a state that
// changes whenever anything in the session does (it is a hash of the rest).

import { createHash } from 'node:crypto';
import type { AccountId } from '../core/ids.ts';
import { COLLATIONS } from './core/query.ts';
import { CORE_CAPABILITY, type CoreLimits, type MethodRegistry } from './core/registry.ts';

/** RFC 8620 §1.2 Id for an account: "A" + 24 base64url characters of SHA-256 of the canonical
 *  account name: opaque, stable across restarts, not the address itself. */
export function accountIdOf(account: AccountId): string {
  return `A${createHash('sha256').update(`arcline-jmap-account:${account}`).digest('base64url').slice(0, 24)}`;
}

export function coreCapability(limits: CoreLimits): Record<string, unknown> {
  return { ...limits, collationAlgorithms: COLLATIONS };
}

export function buildSession(
  registry: MethodRegistry,
  account: AccountId,
  baseUrl: string,
  /** Capabilities (other than core) the account has, with their account-level values. */
  accountCapabilities: Record<string, unknown> = {},
): Record<string, unknown> {
  const id = accountIdOf(account);
  const caps = Object.fromEntries(registry.capabilities());
  const accCaps: Record<string, unknown> = { ...accountCapabilities };
  const primaryAccounts: Record<string, string> = {};
  for (const urn of Object.keys(caps)) {
    if (urn === CORE_CAPABILITY) continue;
    accCaps[urn] ??= registry.accountCapabilities().get(urn) ?? {};
    primaryAccounts[urn] = id;
  }
  const session = {
    capabilities: caps,
    accounts: {
      [id]: { name: account as string, isPersonal: true, isReadOnly: false, accountCapabilities: accCaps },
    },
    primaryAccounts,
    username: account as string,
    apiUrl: `${baseUrl}/jmap/api`,
    downloadUrl: `${baseUrl}/jmap/download/{accountId}/{blobId}/{name}?type={type}`,
    uploadUrl: `${baseUrl}/jmap/upload/{accountId}`,
    eventSourceUrl: `${baseUrl}/jmap/eventsource?types={types}&closeafter={closeafter}&ping={ping}`,
  };
  const state = createHash('sha256').update(JSON.stringify(session)).digest('base64url').slice(0, 16);
  return { ...session, state };
}
