// LIST's answer from what MaildirAccounts.list found (maildir/account.ts): the account's folders
// and its index entries, with the attributes of RFC 3501 §7.2.2, RFC 5258 (\NonExistent,
// \HasChildren) and RFC 6154 (special uses).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MailboxRow } from '../index/backend.ts';
import type { MailboxListEntry } from '../mailboxes.ts';
import { HIERARCHY, SETTABLE_USES } from '../names.ts';
import { DEFAULT_FOLDERS } from './layout.ts';

/** The special use chosen at CREATE (RFC 6154), in the folder's directory. */
export const SPECIAL_USE_FILE = 'arcline-special-use';

/** The uses of the well-known folder names. */
const SPECIAL_USE: Readonly<Record<string, string>> = {
  Sent: '\\Sent',
  Drafts: '\\Drafts',
  Trash: '\\Trash',
  Junk: '\\Junk',
  Archive: '\\Archive',
};

/** The uses chosen at CREATE of these folders (RFC 6154 §3: kept in the folder, so they survive
 *  a lost index and move with RENAME), read 64 at a time: an account may have thousands. */
export async function chosenUses(
  folders: readonly string[],
  dirOf: (name: string) => string,
): Promise<Map<string, string>> {
  const chosen = new Map<string, string>();
  for (let i = 0; i < folders.length; i += 64) {
    await Promise.all(
      folders.slice(i, i + 64).map(async (name) => {
        const v = await readFile(join(dirOf(name), SPECIAL_USE_FILE), 'utf8').catch(() => '');
        if (SETTABLE_USES.has(v.trim())) chosen.set(name, v.trim());
      }),
    );
  }
  return chosen;
}

/** Every mailbox (`names`: the folders that exist, INBOX included), INBOX first, then in code
 *  point order, with the parents that exist only through their children (\Noselect), and the
 *  subscribed names of `rows` that exist no more (\NonExistent, RFC 5258 §3.4). Otherwise a use
 *  follows the folder's well-known name. */
export function listEntries(
  names: ReadonlySet<string>,
  rows: readonly MailboxRow[],
  chosen: ReadonlyMap<string, string>,
): MailboxListEntry[] {
  const ids = new Map(rows.map((m) => [m.name, m.oid]));
  const orders = new Map(rows.map((m) => [m.name, m.sortOrder]));
  const subscribed = new Map(rows.map((m) => [m.name, m.subscribed]));
  // Parents that exist only through their children; a name is a parent when some name
  // extends it (O(names x depth), not a scan of every pair).
  const all = new Set(names);
  const parents = new Set<string>();
  for (const n of names) {
    for (let i = n.indexOf(HIERARCHY); i > 0; i = n.indexOf(HIERARCHY, i + 1)) {
      const parent = n.slice(0, i);
      all.add(parent);
      parents.add(parent);
    }
  }
  const sorted = [...all].sort((a, b) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const out: MailboxListEntry[] = sorted.map((name) => ({
    name,
    ...(names.has(name) && ids.has(name) ? { id: ids.get(name) as string, sortOrder: orders.get(name) ?? 0 } : {}),
    specialUse: chosen.get(name) ?? SPECIAL_USE[name] ?? null,
    subscribed: subscribed.get(name) ?? (name === 'INBOX' || (DEFAULT_FOLDERS as readonly string[]).includes(name)),
    noselect: !names.has(name),
    hasChildren: parents.has(name),
  }));
  const gone = rows.filter((r) => r.subscribed && !all.has(r.name)).map((r) => r.name);
  for (const name of gone.sort()) {
    out.push({ name, specialUse: null, subscribed: true, noselect: true, hasChildren: false, nonexistent: true });
  }
  return out;
}
