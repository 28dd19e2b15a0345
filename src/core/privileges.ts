// Process identity: which account we are, looking up the one to become, and becoming it for good.
// Node has no getpwnam(3), so accounts are read from /etc/passwd and /etc/group, then from
// getent(1) for accounts that live elsewhere (LDAP, systemd-userdb: whatever NSS knows).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { ArclineError, errorMessage } from './errors.ts';

/** An account and the group to run with. */
export interface Account {
  readonly user: string;
  readonly uid: number;
  readonly group: string;
  readonly gid: number;
}

type DbEntry = readonly string[];

/** One entry of a colon-separated database (passwd, group) by name, or by number at `idField`
 *  when `key` is all digits and no entry has that name. */
function lookup(db: 'passwd' | 'group', key: string, idField: number): DbEntry | null {
  const fromText = (text: string): DbEntry | null => {
    let byId: DbEntry | null = null;
    for (const line of text.split('\n')) {
      const f = line.split(':');
      if (f[0] === key) return f;
      if (byId === null && /^\d{1,10}$/.test(key) && f[idField] === key) byId = f;
    }
    return byId;
  };
  try {
    const found = fromText(readFileSync(`/etc/${db}`, 'utf8'));
    if (found) return found;
  } catch {
    // no readable file: ask NSS below
  }
  try {
    return fromText(execFileSync('getent', [db, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch {
    return null; // exit 2: no such entry; ENOENT: no getent
  }
}

function idOf(entry: DbEntry, field: number): number {
  const n = Number(entry[field]);
  if (!Number.isInteger(n) || n < 0) throw new ArclineError('CONFIG', `bad id in the ${entry[0]} entry`);
  return n;
}

/** The account named by [server] user / group (names or numbers; group defaults to the user's
 *  primary group). Throws ArclineError CONFIG naming the key when one does not exist. */
export function lookupAccount(user: string, group = ''): Account {
  const pw = lookup('passwd', user, 2);
  if (!pw) throw new ArclineError('CONFIG', `server.user: no such user: ${JSON.stringify(user)}`);
  const uid = idOf(pw, 2);
  let gid = idOf(pw, 3);
  let primary = groupName(gid);
  if (group !== '') {
    const gr = lookup('group', group, 2);
    if (!gr) throw new ArclineError('CONFIG', `server.group: no such group: ${JSON.stringify(group)}`);
    gid = idOf(gr, 2);
    primary = gr[0] ?? group;
  }
  return { user: pw[0] ?? user, uid, group: primary, gid };
}

/** The account this process runs as (effective ids). */
export function currentAccount(): Account {
  const uid = process.geteuid?.() ?? -1;
  const gid = process.getegid?.() ?? -1;
  let user = String(uid);
  try {
    user = userInfo().username;
  } catch {
    // a uid without a passwd entry (containers): keep the number
  }
  return { user, uid, group: groupName(gid), gid };
}

/** The name of a uid for messages ("root", "arcline", or the number). */
export function userName(uid: number): string {
  return lookup('passwd', String(uid), 2)?.[0] ?? String(uid);
}

/** The name of a gid for messages ("nogroup", or the number). */
export function groupName(gid: number): string {
  return lookup('group', String(gid), 2)?.[0] ?? String(gid);
}

export function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** Becomes `to` for good: supplementary groups (initgroups), then the group, then the user: the
 *  order matters, after setuid we could no longer change groups. setuid as root sets the real,
 *  effective and saved ids, so the process cannot switch back; that is checked, not assumed. */
export function dropPrivileges(to: Account): void {
  // process.initgroups exists on POSIX (Node docs) but is missing from @types/node.
  const initgroups = (process as { initgroups?: (user: string, extraGroup: number) => void }).initgroups;
  if (!process.setuid || !process.setgid || !initgroups || !process.setgroups) {
    throw new ArclineError('CONFIG', 'server.user: this platform cannot change the user of a process');
  }
  try {
    if (lookup('passwd', to.user, 2)) initgroups.call(process, to.user, to.gid);
    else process.setgroups([to.gid]);
    process.setgid(to.gid);
    process.setuid(to.uid);
  } catch (e) {
    throw new ArclineError('CONFIG', `cannot become ${to.user}:${to.group}: ${errorMessage(e)}`, { cause: e });
  }
  const now = [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.()];
  if (now[0] !== to.uid || now[1] !== to.uid || now[2] !== to.gid || now[3] !== to.gid) {
    throw new ArclineError('CONFIG', `dropping privileges left uid/euid/gid/egid ${now.join('/')}`);
  }
  if (to.uid !== 0 && canRegainRoot()) {
    throw new ArclineError('CONFIG', `after becoming ${to.user}, the process could become root again`);
  }
}

/** Whether setuid(0) or setgid(0) still succeeds (it must not after a drop). */
export function canRegainRoot(): boolean {
  for (const attempt of [() => process.setuid?.(0), () => process.setgid?.(0)]) {
    try {
      attempt();
      return true;
    } catch {
      // EPERM: as it should be
    }
  }
  return false;
}

/** `chown -R -P -h uid:gid -- paths`: coreutils walks with openat(2) and fchownat(2) without
 *  following links, so a tree changed under it by its (unprivileged) owner cannot redirect root
 *  to a file elsewhere, as a path-based walk in Node could. */
export function chownTree(paths: readonly string[], owner: Account): void {
  try {
    execFileSync('chown', ['-R', '-P', '-h', `${owner.uid}:${owner.gid}`, '--', ...paths], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new ArclineError('TEMPORARY', `chown failed: ${stderr || errorMessage(e)}`, { cause: e });
  }
}
