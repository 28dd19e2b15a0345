// Recipient expansion, pure over four lookups so every directory backend shares it.
// Rules (Postfix virtual-alias semantics, which operators know):
// - an address with alias entries expands to its destinations, recursively;
// - an alias listing its own address delivers that copy to the user of that name;
// - an address met again on the same path (a loop) expands no further; it still delivers to
//   its user if it has one;
// - a local address that is neither user nor alias falls to its domain's catch-all (when
//   allowed), else it is dropped with a warning;
// - depth and total-target limits bound the work for hostile or broken alias tables;
// - a destination's `+detail` is stripped before lookup, like the original recipient's.

import { type Address, parseAddress, splitDetail } from '../core/address.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';

export interface ExpandLookups {
  isLocalDomain(domain: string): boolean;
  isUser(address: string): boolean;
  aliasTargets(address: string): readonly string[];
  catchAll(domain: string): string | null;
}

export interface Expansion {
  readonly accounts: AccountId[];
  readonly remote: Address[];
  readonly warnings: string[];
}

export function expandRecipient(start: string, db: ExpandLookups, useCatchAll: boolean): Expansion {
  const accounts = new Set<string>();
  const remote = new Map<string, Address>();
  const warnings: string[] = [];
  let steps = 0;

  const visit = (address: string, depth: number, path: ReadonlySet<string>): void => {
    if (++steps > LIMITS.directory.maxAliasTargets) {
      if (steps === LIMITS.directory.maxAliasTargets + 1) warnings.push('alias expansion stopped: too many targets');
      return;
    }
    if (depth > LIMITS.directory.maxAliasDepth) {
      warnings.push(`alias expansion stopped at ${address}: nested too deep`);
      return;
    }
    const a = parseAddress(address);
    if (!a) {
      warnings.push(`invalid alias destination ${address}`);
      return;
    }
    if (!db.isLocalDomain(a.domain)) {
      remote.set(`${a.local}@${a.domain}`, a);
      return;
    }
    const key = `${splitDetail(a.local).base}@${a.domain}`;
    const targets = path.has(key) ? [] : db.aliasTargets(key);
    if (targets.length > 0) {
      const next = new Set(path).add(key);
      for (const t of targets) {
        if (t === key) {
          if (db.isUser(key)) accounts.add(key);
        } else {
          visit(t, depth + 1, next);
        }
      }
      return;
    }
    if (db.isUser(key)) {
      accounts.add(key);
      return;
    }
    if (path.has(key)) return; // a loop through a non-user: nothing more to find
    const catchAll = useCatchAll ? db.catchAll(a.domain) : null;
    const marker = `catch-all:${a.domain}`;
    if (catchAll && !path.has(marker)) {
      visit(catchAll, depth + 1, new Set(path).add(key).add(marker));
    } else if (depth > 0) {
      warnings.push(`alias destination ${key} does not exist; dropped`);
    }
  };

  visit(start, 0, new Set());
  return { accounts: [...accounts] as AccountId[], remote: [...remote.values()], warnings };
}
