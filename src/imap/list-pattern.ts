// LIST/LSUB mailbox patterns (RFC 9051 §6.3.9, RFC 3501 §6.3.8): "*" matches zero or more
// characters, "%" zero or more characters other than the hierarchy delimiter; everything else
// matches itself. The reference is prefixed to the pattern. INBOX is case-insensitive (RFC 9051
// §5.1), so the first five characters of "INBOX" and of "INBOX.<child>" match in any case.
//
// Pure and linear: no RegExp is built from client input (a backtracking engine takes minutes on
// `*****X` against a long name). A pattern is compiled once into a bit-parallel NFA (Shift-And
// with wildcard self-loops, Baeza-Yates & Gonnet): one state per pattern token, the state set a
// bitmask, and each character of a name advances every state at once in O(tokens / 32) word
// operations; a whole match is O(name length x tokens / 32), whatever the mix of "*" and "%".

const STAR = 0x2a; // *
const PCT = 0x25; // %

export interface CompiledPattern {
  /** Number of tokens (literal characters and collapsed wildcard runs). */
  readonly tokens: number;
  /** Literal characters: a name shorter than this cannot match (quick rejection). */
  readonly literals: number;
  /** 32-bit words of a state set (tokens + 1 states). */
  readonly words: number;
  /** Per literal UTF-16 code unit: the states j whose token is that character. */
  readonly lit: ReadonlyMap<number, Uint32Array>;
  /** States whose token is "*" / "%". */
  readonly star: Uint32Array;
  readonly pct: Uint32Array;
  readonly delimiter: number;
}

/** Compiles `reference + pattern`. Runs of wildcards collapse to one ("%*" and "*%" are "*",
 *  "%%" is "%"), so the epsilon closure is a single shift. The caller bounds the length. */
export function compilePattern(reference: string, pattern: string, delimiter = '.'): CompiledPattern {
  const full = reference + pattern;
  const toks: number[] = []; // code units; STAR and PCT stand for wildcards
  for (let i = 0; i < full.length; i++) {
    const c = full.charCodeAt(i);
    if (c === STAR || c === PCT) {
      const last = toks.length - 1;
      if (last >= 0 && (toks[last] === STAR || toks[last] === PCT)) {
        if (c === STAR) toks[last] = STAR;
        continue;
      }
    }
    toks.push(c);
  }
  const words = (toks.length + 1 + 31) >>> 5;
  const lit = new Map<number, Uint32Array>();
  const star = new Uint32Array(words);
  const pct = new Uint32Array(words);
  let literals = 0;
  toks.forEach((c, j) => {
    const w = j >>> 5;
    const bit = 1 << (j & 31);
    if (c === STAR) star[w] = (star[w] as number) | bit;
    else if (c === PCT) pct[w] = (pct[w] as number) | bit;
    else {
      literals++;
      let m = lit.get(c);
      if (!m) {
        m = new Uint32Array(words);
        lit.set(c, m);
      }
      m[w] = (m[w] as number) | bit;
    }
  });
  return { tokens: toks.length, literals, words, lit, star, pct, delimiter: delimiter.charCodeAt(0) };
}

/** True when the first five characters of `name` are INBOX's (INBOX itself or one of its
 *  children), so they match the pattern case-insensitively. */
function inboxPrefix(name: string): boolean {
  return name.length >= 5 && name.slice(0, 5).toUpperCase() === 'INBOX' && (name.length === 5 || name[5] === '.');
}

/** Does `name` match the compiled pattern? O(name.length x words). */
export function matchPattern(p: CompiledPattern, name: string): boolean {
  if (name.length < p.literals) return false;
  const W = p.words;
  const cur = new Uint32Array(W);
  const next = new Uint32Array(W);
  cur[0] = 1;
  closure(p, cur);
  const folded = inboxPrefix(name) ? 5 : 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    let a = p.lit.get(c);
    let b: Uint32Array | undefined;
    if (i < folded) {
      // RFC 9051 §5.1: "INBOX" in any case.
      const lower = c | 0x20;
      a = p.lit.get(lower);
      b = p.lit.get(lower & ~0x20);
    }
    const isDelim = c === p.delimiter;
    let carry = 0;
    let any = 0;
    for (let w = 0; w < W; w++) {
      const d = cur[w] as number;
      // A state on a matching literal moves to the next state (a left shift across words);
      // a state on "*" stays for any character, on "%" for any but the delimiter.
      const e = (d & ((a ? (a[w] as number) : 0) | (b ? (b[w] as number) : 0))) >>> 0;
      let n = ((e << 1) | carry) >>> 0;
      carry = e >>> 31;
      n |= d & (p.star[w] as number);
      if (!isDelim) n |= d & (p.pct[w] as number);
      next[w] = n >>> 0;
      any |= n;
    }
    if (any === 0) return false;
    closure(p, next);
    cur.set(next);
  }
  const m = p.tokens;
  return (((cur[m >>> 5] as number) >>> (m & 31)) & 1) === 1;
}

/** Epsilon moves: a wildcard may match nothing, so a state on a wildcard also reaches the next
 *  one. Wildcard runs are collapsed, so one shift suffices. */
function closure(p: CompiledPattern, s: Uint32Array): void {
  let carry = 0;
  for (let w = 0; w < p.words; w++) {
    const wild = ((s[w] as number) & ((p.star[w] as number) | (p.pct[w] as number))) >>> 0;
    const moved = ((wild << 1) | carry) >>> 0;
    carry = wild >>> 31;
    s[w] = ((s[w] as number) | moved) >>> 0;
  }
}
