// Which account the server and the CLI run as, and the state of the data directories before
// anything is opened. docs/deployment.md ("Running as its own user") describes the policy:
//
// serve   root with [server] user:  bind the ports, then become that user for good.
//         root without it:          refused, unless [server] allow_root / --allow-root (warned).
//         another account:          runs as itself; [server] user must name it, if set.
// CLI     root:                     becomes [server] user, or else the owner of the existing
//                                   state directory, before opening anything, so whatever it
//                                   creates (Maildirs, DKIM keys, databases) belongs to the
//                                   server's account; otherwise stays root.
//         another account:          runs as itself ([server] user, if set, must name it).
//
// Before the server or the CLI opens a file, the state directory and the Maildir root exist
// (created 0700 and owned by the service account when missing), the state directory is 0700,
// and both roots and their direct entries belong to the account that will use them. Data owned
// by someone else (a server that ran as root before) is refused with a message naming
// `arcline fix-permissions`, rather than changed behind the operator's back.

import { chmodSync, chownSync, lstatSync } from 'node:fs';
import type { Config } from './config/schema.ts';
import { ArclineError, errorMessage } from './core/errors.ts';
import { LIMITS } from './core/limits.ts';
import { dirAndEntries, firstForeignOwner, makePrivateDirSync, PRIVATE_DIR_MODE } from './core/private-files.ts';
import { type Account, currentAccount, groupName, isRoot, lookupAccount, userName } from './core/privileges.ts';

export interface RunPlan {
  /** The account to become (after binding the ports, for serve); null: stay as started. */
  readonly become: Account | null;
  /** The account that owns the data: `become`, or the current one. */
  readonly owner: Account;
  /** Staying root on purpose (allow_root): no ownership rules apply, a warning is logged. */
  readonly root: boolean;
}

export const ROOT_REFUSED =
  'refusing to run as root: set [server] user = "<account>" (the ports are bound as root, then the server ' +
  'becomes that account), or start it as that account (systemd User=); [server] allow_root = true or ' +
  '`serve --allow-root` runs as root anyway (development only)';

/** The plan for `serve`; throws ArclineError CONFIG with the reason it cannot run. */
export function planServe(config: Config, allowRoot: boolean): RunPlan {
  const me = currentAccount();
  const allow = allowRoot || config.server.allow_root;
  if (config.server.user === '') {
    if (isRoot() && !allow) throw new ArclineError('CONFIG', ROOT_REFUSED);
    return { become: null, owner: me, root: isRoot() };
  }
  const target = lookupAccount(config.server.user, config.server.group);
  if (target.uid === 0 && !allow) throw new ArclineError('CONFIG', `server.user is root; ${ROOT_REFUSED}`);
  if (target.uid === 0 && isRoot()) return { become: null, owner: me, root: true };
  return planAs(target, me, config);
}

/** The plan for the other commands (see the header). */
export function planCli(config: Config): RunPlan {
  const me = currentAccount();
  if (config.server.user !== '') {
    const target = lookupAccount(config.server.user, config.server.group);
    if (target.uid !== 0) return planAs(target, me, config);
  } else if (isRoot()) {
    const st = statOrNull(config.storage.state);
    if (st && st.uid !== 0) {
      const owner = { user: userName(st.uid), uid: st.uid, group: groupName(st.gid), gid: st.gid };
      return { become: owner, owner, root: false };
    }
  }
  return { become: null, owner: me, root: isRoot() };
}

function planAs(target: Account, me: Account, config: Config): RunPlan {
  if (isRoot()) return { become: target, owner: target, root: false };
  const wrongGroup = config.server.group !== '' && me.gid !== target.gid;
  if (me.uid !== target.uid || wrongGroup) {
    throw new ArclineError(
      'CONFIG',
      `server.user/group is ${target.user}:${target.group} but arcline runs as ${me.user}:${me.group}, and ` +
        `only root can change that: start it as root or as ${target.user}`,
    );
  }
  return { become: null, owner: me, root: false };
}

function statOrNull(path: string): { uid: number; gid: number } | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

export interface StorageNotes {
  /** Roots created now. */
  readonly created: string[];
  /** Roots whose mode was narrowed to 0700. */
  readonly narrowed: string[];
}

/** Makes the state directory and the Maildir root ready for `plan` (see the header); throws
 *  ArclineError CONFIG naming `arcline fix-permissions` when data belongs to another account. */
export function prepareStorage(config: Config, plan: RunPlan): StorageNotes {
  const { state, maildir } = config.storage;
  const owner = plan.become;
  const notes: StorageNotes = { created: [], narrowed: [] };
  for (const root of [state, maildir]) {
    try {
      if (makePrivateDirSync(root, owner, owner ? chownSync : null)) notes.created.push(root);
    } catch (e) {
      throw new ArclineError('CONFIG', `cannot create ${root}: ${errorMessage(e)}`, { cause: e });
    }
  }
  if (plan.root) return notes;
  const max = LIMITS.lifecycle.maxOwnershipCheckEntries;
  const foreign = firstForeignOwner([...dirAndEntries(state, max), ...dirAndEntries(maildir, max)], plan.owner.uid);
  if (foreign) {
    throw new ArclineError(
      'CONFIG',
      `${foreign.path} belongs to ${userName(foreign.uid)}, not to ${plan.owner.user} (the account arcline runs ` +
        'as): stop the server and run `arcline fix-permissions` as root to give the data to that account',
    );
  }
  // The state directory holds the password database and private keys: 0700, whatever made it.
  if ((lstatSync(state).mode & 0o077) !== 0) {
    chmodSync(state, PRIVATE_DIR_MODE);
    notes.narrowed.push(state);
  }
  return notes;
}
