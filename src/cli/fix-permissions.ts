// `arcline fix-permissions`: gives the state directory and the Maildir tree to the account the
// server runs as ([server] user / group) and narrows every file to 0600 and directory to 0700.
// For data written by root (an older version run as root, a copy of a Maildir, `arcline` run as
// root before it dropped privileges). Run it with the server stopped.
//
// As root: chown(1) changes the owners (it walks with openat and never follows a link, so the
// service account cannot redirect it elsewhere by changing the tree meanwhile); then the process
// becomes that account for the modes, so no path-based walk ever runs as root.

import { existsSync, realpathSync } from 'node:fs';
import type { Config } from '../config/schema.ts';
import { ArclineError } from '../core/errors.ts';
import { type FixReport, narrowModes } from '../core/private-files.ts';
import { chownTree, currentAccount, dropPrivileges, isRoot, lookupAccount } from '../core/privileges.ts';

export async function fixPermissions(config: Config): Promise<string> {
  const roots = [config.storage.state, config.storage.maildir].filter((p) => existsSync(p)).map((p) => realpathSync(p));
  let owner = currentAccount();
  if (config.server.user !== '') owner = lookupAccount(config.server.user, config.server.group);
  else if (isRoot()) {
    throw new ArclineError(
      'CONFIG',
      'fix-permissions: set [server] user (the account the server runs as) first: without it the data stays root',
    );
  }
  if (owner.uid === 0) throw new ArclineError('CONFIG', 'fix-permissions: [server] user is root');
  if (isRoot()) {
    if (roots.length) chownTree(roots, owner);
    dropPrivileges(owner);
  } else if (owner.uid !== currentAccount().uid) {
    throw new ArclineError('CONFIG', `fix-permissions: run it as root (to give the data to ${owner.user})`);
  }
  const report: FixReport = { checked: 0, chmodded: 0 };
  for (const root of roots) {
    try {
      await narrowModes(root, report);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'EPERM' && err.code !== 'EACCES') throw e;
      throw new ArclineError('CONFIG', `fix-permissions: ${err.path ?? root}: ${err.code}: run it as root`);
    }
  }
  return (
    `${roots.join(' and ') || 'nothing to fix (no data directory yet)'}: ${report.checked} entries owned by ` +
    `${owner.user}:${owner.group}, ${report.chmodded} narrowed to 0600 (files) / 0700 (directories)`
  );
}
