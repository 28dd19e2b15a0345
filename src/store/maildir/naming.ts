// Unique Maildir file names (cr.yp.to/proto/maildir.html "unique names"), in the form Dovecot
// writes: `<secs>.M<usecs>P<pid>Q<seq>.<host>,S=<size>,W=<vsize>`. S= is the file size; W= the
// size with CRLF line endings, equal to S= because we store CRLF as received. Dovecot, mutt and
// mbsync read these; IMAP uses S= for RFC822.SIZE without a stat.
// The per-process sequence number makes names unique even within one microsecond.

import { hostname } from 'node:os';

const host = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054');
let seq = 0;

export function uniqueBase(now = Date.now(), micros = Math.floor((performance.now() * 1000) % 1_000_000)): string {
  seq += 1;
  return `${Math.floor(now / 1000)}.M${micros}P${process.pid}Q${seq}.${host}`;
}

export function withSize(base: string, size: number): string {
  return `${base},S=${size},W=${size}`;
}

/** The S= size of a Maildir file name, or null. */
export function sizeFromName(name: string): number | null {
  const m = /,S=(\d+)/.exec(name);
  return m ? Number(m[1]) : null;
}
