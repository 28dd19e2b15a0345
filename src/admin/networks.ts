// The IP allow and deny lists and the bans as the operator changes them: one place for each rule,
// used by the CLI (`arcline ip`, `arcline ban`) and the admin API (api/networks.ts). The store
// is defense/store.ts; the running server sees every change within a second (defense/access.ts).

import { ArclineError } from '../core/errors.ts';
import { banNetwork, NetworkSet, parseNetwork } from '../defense/networks.ts';
import { type BanEntry, type DefenseStore, type ListName, MAX_COMMENT, type NetworkEntry } from '../defense/store.ts';

/** Addresses local tools use to reach the server (the CLI's API calls, a local webmail). */
const LOCAL = ['127.0.0.1', '::1'];

function network(text: string) {
  const n = parseNetwork(text);
  if (!n) throw new ArclineError('INVALID', `not an IP address or CIDR network: ${JSON.stringify(text.slice(0, 80))}`);
  return n;
}

/** Puts a network on a list (idempotent; moves it from the other list). Refused: a deny entry
 *  covering the loopback addresses (it would lock out the local tools and webmail) or every
 *  address (/0). Returns the entry and whether anything changed. */
export async function putNetwork(
  store: DefenseStore,
  text: string,
  list: ListName,
  opts: { comment?: string; by: string },
): Promise<{ entry: NetworkEntry; changed: boolean }> {
  const n = network(text);
  const comment = (opts.comment ?? '').trim();
  if (comment.length > MAX_COMMENT || /\p{Cc}/u.test(comment)) {
    throw new ArclineError('INVALID', `a comment is one line of at most ${MAX_COMMENT} characters`);
  }
  if (list === 'deny') {
    if (n.prefix === 0) throw new ArclineError('INVALID', `denying ${n.cidr} would refuse every client`);
    const set = new NetworkSet([n]);
    const local = LOCAL.find((a) => set.has(a));
    if (local) throw new ArclineError('INVALID', `${n.cidr} contains ${local}, which local tools connect from`);
  }
  const changed = await store.putNetwork(n, list, comment, opts.by);
  const entry = (await store.networks()).find((e) => e.cidr === n.cidr);
  if (!entry) throw new Error(`network ${n.cidr} vanished`);
  return { entry, changed };
}

/** Removes a network from its list; NOT_FOUND when no list holds it (`ifPresent`: false instead). */
export async function deleteNetwork(store: DefenseStore, text: string, ifPresent = false): Promise<boolean> {
  const n = network(text);
  if (await store.deleteNetwork(n.cidr)) return true;
  if (ifPresent) return false;
  throw new ArclineError('NOT_FOUND', `${n.cidr} is on no list`);
}

/** Lifts the ban of an address's network; NOT_FOUND when it is not banned (`ifPresent`: false). */
export async function liftBan(store: DefenseStore, text: string, ifPresent = false): Promise<boolean> {
  const n = parseNetwork(text);
  const b = n ? banNetwork(n.address) : null;
  if (!n || !b) throw new ArclineError('INVALID', `not an IP address: ${JSON.stringify(text.slice(0, 80))}`);
  if (await store.unban(b.cidr)) return true;
  if (ifPresent) return false;
  throw new ArclineError('NOT_FOUND', `${b.cidr} is not banned`);
}

export interface Explanation {
  readonly ip: string;
  /** What a connection from `ip` meets: allow, deny, banned or open (docs/spam.md). */
  readonly verdict: 'allow' | 'deny' | 'banned' | 'open';
  /** The list entries that contain `ip`. */
  readonly entries: readonly NetworkEntry[];
  /** Its network's ban in force, if any. */
  readonly ban: BanEntry | null;
}

/** Why a connection from `ip` is allowed or refused. */
export async function explain(store: DefenseStore, ip: string, now = Date.now()): Promise<Explanation> {
  const n = parseNetwork(ip);
  if (!n || n.prefix !== (n.family === 'ipv4' ? 32 : 128)) {
    throw new ArclineError('INVALID', `not an IP address: ${JSON.stringify(ip.slice(0, 80))}`);
  }
  const entries = (await store.networks()).filter((e) => {
    const net = parseNetwork(e.cidr);
    return net !== null && new NetworkSet([net]).has(n.address);
  });
  const b = banNetwork(n.address);
  const ban = (await store.bans(now)).find((x) => x.network === b?.cidr) ?? null;
  const verdict = entries.some((e) => e.list === 'allow')
    ? 'allow'
    : entries.some((e) => e.list === 'deny')
      ? 'deny'
      : ban
        ? 'banned'
        : 'open';
  return { ip: n.address, verdict, entries, ban };
}
