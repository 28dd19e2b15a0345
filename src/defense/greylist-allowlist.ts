// The greylisting allowlist of clients (postgrey's whitelist_clients format, docs/spam.md): large
// senders whose retries come from another address of a pool, so that greylisting would delay
// their mail by hours (docker-mailserver #2040). One entry a line, '#' starts a comment:
//   example.com        the verified reverse name is example.com or ends with ".example.com"
//   /^mail\d+\.ex\.net$/   a regular expression matched against the verified reverse name
//   192.0.2.7 | 192.0.2.0/24 | 2001:db8::/32   a client address or network (CIDR)
//   192.0.2            postgrey's partial address: the first octets (a /8, /16 or /24)
// The list shipped with arcline (greylist-allowlist-data.ts) is read with the operator's file
// ([greylist] allowlist_file), which is looked at again when its mtime changes, so it can be
// updated without a release or a restart.
// Patterns come from the operator and the package, never from a client; they are matched only
// against a reverse name the DNS confirmed (at most 253 characters) and are refused when they
// nest quantifiers (the shape of catastrophic backtracking).

import { readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { parseCidr } from '../config/schema.ts';
import { LIMITS } from '../core/limits.ts';
import { Networks } from '../hygiene/networks.ts';
import { SHIPPED_ALLOWLIST } from './greylist-allowlist-data.ts';

const D = LIMITS.defense;

export interface ParsedAllowlist {
  /** Lower-case domains: the name itself or any name under it. */
  readonly domains: ReadonlySet<string>;
  readonly patterns: readonly RegExp[];
  readonly cidrs: readonly string[];
  /** Lines not understood, with their numbers (logged, never fatal). */
  readonly errors: readonly string[];
}

/** A quantified group that itself holds a quantifier: (a+)+, (\w*)*, (x|y+){2,}. */
const NESTED_QUANTIFIER = /\([^()]*[+*}][^()]*\)[+*{]/;

/** Parses the text of an allowlist (pure; bounded by LIMITS.defense). */
export function parseAllowlist(text: string, source: string): ParsedAllowlist {
  const domains = new Set<string>();
  const patterns: RegExp[] = [];
  const cidrs: string[] = [];
  const errors: string[] = [];
  const lines = text.slice(0, D.greylistAllowlistMaxBytes).split('\n');
  let entries = 0;
  for (let i = 0; i < lines.length && entries < D.greylistAllowlistMaxEntries; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    entries++;
    const where = `${source}:${i + 1}`;
    if (line.length > 2 && line.startsWith('/') && line.endsWith('/')) {
      const body = line.slice(1, -1);
      if (body.length > D.greylistAllowlistMaxPattern || NESTED_QUANTIFIER.test(body)) {
        errors.push(`${where}: pattern too long or with nested quantifiers`);
        continue;
      }
      try {
        patterns.push(new RegExp(body, 'i'));
      } catch {
        errors.push(`${where}: not a regular expression`);
      }
      continue;
    }
    const partial = /^(\d{1,3})(?:\.(\d{1,3}))?(?:\.(\d{1,3}))?$/.exec(line);
    if (partial) {
      const octets = partial.slice(1).filter((o) => o !== undefined);
      if (octets.every((o) => Number(o) <= 255)) {
        cidrs.push(`${[...octets, '0', '0', '0'].slice(0, 4).join('.')}/${octets.length * 8}`);
        continue;
      }
    }
    if (isIP(line) !== 0 || (line.includes('/') && parseCidr(line) !== null)) {
      cidrs.push(line);
      continue;
    }
    const host = line.startsWith('.') ? line.slice(1) : line;
    if (/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/.test(host)) {
      domains.add(host.toLowerCase());
      continue;
    }
    errors.push(`${where}: neither a host name, a /pattern/ nor an address`);
  }
  return { domains, patterns, cidrs, errors };
}

class Compiled {
  readonly #domains: ReadonlySet<string>;
  readonly #patterns: readonly RegExp[];
  readonly #networks: Networks;

  constructor(lists: readonly ParsedAllowlist[]) {
    this.#domains = new Set(lists.flatMap((l) => [...l.domains]));
    this.#patterns = lists.flatMap((l) => l.patterns);
    this.#networks = new Networks(lists.flatMap((l) => l.cidrs));
  }

  allows(ip: string, name: string | null): boolean {
    if (this.#networks.has(ip)) return true;
    if (name === null || name.length > 253) return false;
    const n = name.toLowerCase().replace(/\.$/, '');
    // The name and each parent on a label boundary: mail-a.google.com, google.com, com
    // (postgrey matches any suffix, so "google.com" also allowed "evilgoogle.com").
    for (let s = n; ; ) {
      if (this.#domains.has(s)) return true;
      const dot = s.indexOf('.');
      if (dot < 0) break;
      s = s.slice(dot + 1);
    }
    return this.#patterns.some((p) => p.test(n));
  }
}

export interface AllowlistOptions {
  /** The operator's file; '' for none. */
  readonly file: string;
  /** Where unreadable lines are reported. */
  readonly warn: (msg: string) => void;
  /** The shipped list (tests replace it). */
  readonly shipped?: string;
}

/** The shipped list plus the operator's file, re-read when the file's mtime changes (looked at
 *  no more than every LIMITS.defense.greylistAllowlistCheckMs). */
export class GreylistAllowlist {
  readonly #o: AllowlistOptions;
  readonly #shipped: ParsedAllowlist;
  #compiled: Compiled;
  #mtime = -1;
  #checked = 0;
  #loading: Promise<void> | null = null;

  constructor(o: AllowlistOptions) {
    this.#o = o;
    this.#shipped = parseAllowlist(o.shipped ?? SHIPPED_ALLOWLIST, 'shipped allowlist');
    for (const e of this.#shipped.errors) o.warn(e);
    this.#compiled = new Compiled([this.#shipped]);
  }

  /** Reads the operator's file now (at start, and `reload`). */
  async reload(): Promise<void> {
    const file = this.#o.file;
    if (file === '') return;
    this.#checked = Date.now();
    let mtime: number;
    try {
      mtime = (await stat(file)).mtimeMs;
    } catch {
      if (this.#mtime !== -1) this.#o.warn(`${file}: not readable; the shipped allowlist only`);
      this.#mtime = -1;
      this.#compiled = new Compiled([this.#shipped]);
      return;
    }
    if (mtime === this.#mtime) return;
    const text = await readFile(file, 'utf8');
    const own = parseAllowlist(text, file);
    for (const e of own.errors) this.#o.warn(e);
    this.#compiled = new Compiled([this.#shipped, own]);
    this.#mtime = mtime;
  }

  /** Whether the client is allowed: its address, or its verified reverse name. */
  async allows(ip: string, verifiedName: string | null): Promise<boolean> {
    if (this.#o.file !== '' && Date.now() - this.#checked >= D.greylistAllowlistCheckMs) {
      this.#loading ??= this.reload()
        .catch((e: unknown) => this.#o.warn(`${this.#o.file}: ${String(e)}`))
        .finally(() => {
          this.#loading = null;
        });
      await this.#loading;
    }
    return this.#compiled.allows(ip, verifiedName);
  }
}
