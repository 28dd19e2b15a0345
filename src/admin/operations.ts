// Management operations as plain functions over the directory and the store, shared by the
// CLI, the tests and the admin HTTP API (api/). A user is a directory row plus a Maildir;
// these keep the two in step.

import { formatAddress, normalizeDomain, parseAddress } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import type { AliasInfo, DirectoryAdmin, UserInfo } from '../directory/types.ts';
import type { DkimAlgorithm, DkimKey, DkimKeys } from '../hygiene/dkim-keys.ts';
import type { MailStore } from '../store/types.ts';
import {
  activateDkim,
  advanceRotations,
  type RotateOptions,
  type RotationDeps,
  type RotationRound,
  rotateDkim,
} from './dkim-rotation.ts';

export interface AdminOps extends Omit<DirectoryAdmin, 'addUser' | 'addUserWithHash' | 'deleteUser' | 'deleteDomain'> {
  /** Removes an empty domain; its DKIM keys are retired (where to: `retiredDkim`, null if none). */
  deleteDomain(name: string): Promise<{ retiredDkim: string | null }>;
  addUser(address: string, opts: { password: string; quotaBytes?: number | null }): Promise<UserInfo>;
  addUserWithHash(address: string, opts: { passwordHash: string; quotaBytes?: number | null }): Promise<UserInfo>;
  /** Removes the user; the Maildir stays on disk unless `purge`. */
  deleteUser(address: string, opts?: { purge?: boolean }): Promise<UserInfo>;
  /** Makes `destinations` the alias's whole set (the new ones are validated before any goes). */
  replaceAlias(source: string, destinations: readonly string[]): Promise<AliasInfo>;
  /** DKIM key rotation (admin/dkim-rotation.ts): new pending keys, then their activation. */
  rotateDkim(domain: string, opts?: RotateOptions): Promise<readonly DkimKey[]>;
  /** The periodic step of every domain's rotation (advanceRotations): activation once published,
   *  deletion of retired keys after their grace. */
  advanceDkimRotations(now?: Date): Promise<RotationRound>;
  activateDkim(
    domain: string,
    selector: string,
    opts?: { force?: boolean },
  ): Promise<{ key: DkimKey; retired: string | null }>;
}

export function createAdminOps(deps: {
  directory: DirectoryAdmin;
  store: MailStore;
  /** With these, a new domain gets a DKIM key at once (its DNS record still has to be published). */
  dkim?: DkimKeys;
  dkimDefaults?: { readonly selector: string; readonly algorithm: DkimAlgorithm };
  /** DNS look-up for the activation of a rotated DKIM key (RotationDeps.published). */
  dkimPublished?: RotationDeps['published'];
  /** After a password change (the admin API ends the user's login sessions). */
  onPasswordChange?: (accountId: AccountId) => Promise<unknown>;
  /** After a user's deletion: what else the account owns goes with it (its Sieve scripts). */
  onUserDeleted?: (accountId: AccountId) => Promise<void>;
}): AdminOps {
  const { directory, store, dkim, dkimDefaults } = deps;
  const rotation = (): RotationDeps => {
    if (!dkim || !dkimDefaults) throw new ArclineError('INVALID', 'DKIM keys are not managed here');
    return { dkim, defaults: dkimDefaults, published: deps.dkimPublished ?? (async () => null) };
  };
  /** Creates the Maildir for a new directory row; undoes the row if that fails. */
  const withMaildir = async (user: UserInfo): Promise<UserInfo> => {
    try {
      await store.createAccount(user.accountId);
    } catch (e) {
      await directory.deleteUser(user.address);
      throw e;
    }
    return user;
  };
  return {
    addDomain: async (n) => {
      const d = await directory.addDomain(n);
      if (dkim && dkimDefaults && (await dkim.keys(d.name)).length === 0) {
        await dkim.generate(d.name, { selector: dkimDefaults.selector, algorithm: dkimDefaults.algorithm });
      }
      return d;
    },
    deleteDomain: async (n) => {
      await directory.deleteDomain(n);
      // Its DKIM keys go out of use with it (kept aside, see DkimKeys.retire).
      return { retiredDkim: dkim ? await dkim.retire(normalizeDomain(n) ?? n) : null };
    },
    listDomains: () => directory.listDomains(),
    checkNewUser: (a) => directory.checkNewUser(a),
    addUser: async (a, o) => withMaildir(await directory.addUser(a, o)),
    addUserWithHash: async (a, o) => withMaildir(await directory.addUserWithHash(a, o)),
    deleteUser: async (address, opts) => {
      const user = await directory.deleteUser(address);
      await deps.onUserDeleted?.(user.accountId as AccountId);
      if (opts?.purge) await store.purgeAccount(user.accountId as AccountId);
      return user;
    },
    setPassword: async (a, p) => {
      await directory.setPassword(a, p);
      const u = await directory.getUser(a);
      if (u) await deps.onPasswordChange?.(u.accountId);
    },
    setQuota: (a, q) => directory.setQuota(a, q),
    setEnabled: (a, e) => directory.setEnabled(a, e),
    getUser: (a) => directory.getUser(a),
    listUsers: (d) => directory.listUsers(d),
    addAlias: (s, d) => directory.addAlias(s, d),
    deleteAlias: (s, d) => directory.deleteAlias(s, d),
    rotateDkim: (domain, opts) => rotateDkim(rotation(), domain, opts),
    advanceDkimRotations: async (now) =>
      advanceRotations(
        rotation(),
        (await directory.listDomains()).map((d) => d.name),
        now,
      ),
    activateDkim: (domain, selector, opts) => activateDkim(rotation(), domain, selector, opts),
    replaceAlias: async (source, destinations) => {
      // addAlias validates every destination and returns the normalised set it now holds.
      const added = await directory.addAlias(source, destinations);
      const wanted = new Set(
        destinations.map((d) => {
          const a = parseAddress(d);
          return a ? formatAddress(a) : d;
        }),
      );
      const extra = added.destinations.filter((d) => !wanted.has(d));
      if (extra.length > 0) await directory.deleteAlias(added.source, extra);
      return { source: added.source, destinations: added.destinations.filter((d) => wanted.has(d)) };
    },
    listAliases: (d) => directory.listAliases(d),
    setCatchAll: (d, t) => directory.setCatchAll(d, t),
    addAllowedSender: (u, p) => directory.addAllowedSender(u, p),
    deleteAllowedSender: (u, p) => directory.deleteAllowedSender(u, p),
    listAllowedSenders: (u) => directory.listAllowedSenders(u),
  };
}
