// Unique Maildir file names (cr.yp.to/proto/maildir.html "unique names"), in the form Dovecot
// writes: `<secs>.M<usecs>P<pid>Q<seq>.<host>,S=<size>,W=<vsize>`. S= is the file size; W= the
// size with CRLF line endings, equal to S= because we store CRLF as received. Dovecot, mutt and
// mbsync read these; IMAP uses S= for RFC822.SIZE without a stat.
// The per-process sequence number (a range per thread) makes names unique even within one
// microsecond.

import { hostname } from 'node:os';
import { threadId } from 'node:worker_threads';

let host = safeHost(hostname());
// Each thread (the inbound SMTP threads write Maildir files too) counts in a range of its own,
// so two threads of one process naming a file in the same microsecond never collide.
let seq = threadId * 2 ** 32;

/** The host part of names, with "/", ":" and "," escaped as Dovecot does. */
function safeHost(name: string): string {
  return name.replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054');
}

/** Names made from now on carry `node` instead of the host name: nodes of a cluster writing one
 *  shared Maildir (docs/cluster.md) may be containers with the same host name and pid. */
export function useNodeName(node: string): void {
  host = safeHost(node);
}

/** `<secs>.M<usecs>P<pid>Q<seq>.<host>`: seconds and microseconds of the wall clock, so names
 *  order by delivery time (see compareNames). */
export function uniqueBase(nowMs = performance.timeOrigin + performance.now()): string {
  seq += 1;
  const secs = Math.floor(nowMs / 1000);
  const micros = Math.floor((nowMs - secs * 1000) * 1000);
  return `${secs}.M${micros}P${process.pid}Q${seq}.${host}`;
}

const PARTS = /^(\d+)\.(?:M(\d+))?(?:P(\d+))?(?:Q(\d+))?/;

/** Orders Maildir names by delivery time: seconds, then microseconds, then the per-process
 *  sequence number, numerically (plain string order puts "M99000" after "M100000"); names of
 *  other forms fall back to string order. */
export function compareNames(a: string, b: string): number {
  const x = PARTS.exec(a);
  const y = PARTS.exec(b);
  if (x && y) {
    for (const i of [1, 2, 4, 3]) {
      const d = Number(x[i] ?? 0) - Number(y[i] ?? 0);
      if (d !== 0) return d;
    }
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

export function withSize(base: string, size: number): string {
  return `${base},S=${size},W=${size}`;
}

/** The S= size of a Maildir file name, or null. */
export function sizeFromName(name: string): number | null {
  const m = /,S=(\d+)/.exec(name);
  return m ? Number(m[1]) : null;
}
