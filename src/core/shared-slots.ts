// Connection limits shared by every thread that accepts connections for one service (the
// inbound SMTP threads, docs/architecture.md §8): the same admit/release as ConnectionCounter,
// over a SharedArrayBuffer, so a client's connections are counted together whichever thread the
// kernel handed them to (SO_REUSEPORT spreads them by address and port).
//
// Layout (Int32Array): [lock, total, used, seed] then `capacity` slots of SLOT words:
//   8 words of key (the client key of connection-limits.ts, or the key of a wider client
//   network with a limit of its own, "192.0.2.0/26", "20010db80001/48"; ASCII, zero-padded; at
//   most 32 bytes: "ffff:ffff:ffff:ffff::/64" is 24), the count, and the state (0 empty, 1 live,
//   2 free again). Open addressing with linear probing; a slot whose count drops to 0 becomes
//   "free again" (a tombstone), reused by the next insert on its probe path; when live + free
//   slots pass 3/4 of the table it is rebuilt in place. The capacity is at least twice the total
//   limit, so live keys never fill it.
// The memory of clients slowed for their errors (gate.ts) is shared too: MARKS buckets of one
// 64-bit word each, (32-bit seeded hash of the key, seconds until), written and read atomically;
// a newer client whose hash falls in the same bucket replaces an older one (the memory is bounded
// and forgets, as the one-thread map does), and two keys with the same full hash are not a risk
// an attacker can aim at.
// Every operation holds a spin lock for a few hundred nanoseconds (no allocation, no I/O inside);
// the hash is seeded per server start, so no client can aim its addresses at another's slot.

import { randomInt } from 'node:crypto';
import {
  type ConnectionSlots,
  clientKey,
  type ErrorMemory,
  type NetworkLimit,
  networkKeys,
  type Refusal,
} from './connection-limits.ts';

const HEADER = 4;
const KEY_WORDS = 8;
const SLOT = KEY_WORDS + 2;
const COUNT = KEY_WORDS;
const STATE = KEY_WORDS + 1;
const LIVE = 1;
const FREED = 2;
const LOCK = 0;
const TOTAL = 1;
const USED = 2;
const SEED = 3;

const word = (w: Int32Array, i: number): number => w[i] as number;

const MARKS = 8192;
const EPOCH_MS = Date.UTC(2020, 0, 1);

export interface SharedSlotsInit {
  readonly buffer: SharedArrayBuffer;
  readonly marks: SharedArrayBuffer;
  readonly maxPerClient: number;
  readonly maxTotal: number;
  /** Limits of wider client networks (connection-limits.ts); their keys live in the same table. */
  readonly networks?: readonly NetworkLimit[];
}

export class SharedSlots implements ConnectionSlots, ErrorMemory {
  readonly #words: Int32Array;
  readonly #marks: BigInt64Array;
  readonly #capacity: number;
  readonly #max: number;
  readonly #maxTotal: number;
  readonly #networks: readonly NetworkLimit[];
  readonly #key = new Int32Array(KEY_WORDS);

  /** A new table for `maxTotal` connections; hand `init` to the other threads. */
  static create(
    maxPerClient: number,
    maxTotal: number,
    networks: readonly NetworkLimit[] = [],
    exempt: (ip: string) => boolean = () => false,
  ): SharedSlots {
    const nets = networks.filter((l) => l.max > 0);
    let capacity = 1024;
    // Each connection holds its client key and one key per network limit.
    while (capacity < 2 * maxTotal * (1 + nets.length)) capacity *= 2;
    const buffer = new SharedArrayBuffer((HEADER + capacity * SLOT) * 4);
    const marks = new SharedArrayBuffer(MARKS * 8);
    const slots = new SharedSlots({ buffer, marks, maxPerClient, maxTotal, networks: nets }, exempt);
    Atomics.store(slots.#words, SEED, randomInt(1, 2 ** 31 - 1));
    return slots;
  }

  readonly #exempt: (ip: string) => boolean;

  /** `exempt`: clients whose networks are not counted (trusted networks); give every thread the
   *  same predicate. */
  constructor(init: SharedSlotsInit, exempt: (ip: string) => boolean = () => false) {
    this.#exempt = exempt;
    this.#words = new Int32Array(init.buffer);
    this.#marks = new BigInt64Array(init.marks);
    this.#capacity = (this.#words.length - HEADER) / SLOT;
    this.#max = init.maxPerClient;
    this.#maxTotal = init.maxTotal;
    this.#networks = init.networks ?? [];
  }

  get init(): SharedSlotsInit {
    return {
      buffer: this.#words.buffer as SharedArrayBuffer,
      marks: this.#marks.buffer as SharedArrayBuffer,
      maxPerClient: this.#max,
      maxTotal: this.#maxTotal,
      networks: this.#networks,
    };
  }

  admit(ip: string): Refusal | null {
    const keys = [clientKey(ip), ...(this.#exempt(ip) ? [] : networkKeys(ip, this.#networks))];
    this.#lock();
    try {
      const w = this.#words;
      if (word(w, TOTAL) >= this.#maxTotal) return 'total';
      // Every key under its limit first; then all of them counted (the lock is held throughout).
      for (let i = 0; i < keys.length; i++) {
        const max = i === 0 ? this.#max : (this.#networks[i - 1] as NetworkLimit).max;
        this.#encode(keys[i] as string);
        const { found } = this.#find();
        const n = found < 0 ? 0 : word(w, HEADER + found * SLOT + COUNT);
        if (n >= max) return i === 0 ? 'per-ip' : 'per-network';
      }
      for (const key of keys) {
        this.#encode(key);
        this.#increment();
      }
      w[TOTAL] = word(w, TOTAL) + 1;
      return null;
    } finally {
      this.#unlock();
    }
  }

  /** Counts one more for the key in #key (lock held). */
  #increment(): void {
    const w = this.#words;
    const { found, insertAt } = this.#find();
    if (found >= 0) {
      const slot = HEADER + found * SLOT;
      w[slot + COUNT] = word(w, slot + COUNT) + 1;
      return;
    }
    const slot = HEADER + insertAt * SLOT;
    if (w[slot + STATE] !== FREED) w[USED] = word(w, USED) + 1;
    w.set(this.#key, slot);
    w[slot + COUNT] = 1;
    w[slot + STATE] = LIVE;
    if (word(w, USED) * 4 > this.#capacity * 3) this.#rebuild();
  }

  release(ip: string): void {
    const keys = [clientKey(ip), ...(this.#exempt(ip) ? [] : networkKeys(ip, this.#networks))];
    this.#lock();
    try {
      const w = this.#words;
      for (let i = 0; i < keys.length; i++) {
        this.#encode(keys[i] as string);
        const { found } = this.#find();
        if (found < 0) {
          if (i === 0) return; // not counted
          continue;
        }
        const slot = HEADER + found * SLOT;
        if (i === 0) w[TOTAL] = word(w, TOTAL) - 1;
        w[slot + COUNT] = word(w, slot + COUNT) - 1;
        if (w[slot + COUNT] === 0) w[slot + STATE] = FREED;
      }
    } finally {
      this.#unlock();
    }
  }

  /** Connections counted, in all threads. */
  get total(): number {
    return Atomics.load(this.#words, TOTAL);
  }

  /** Connections counted for the client of `ip` (tests, metrics). */
  count(ip: string): number {
    this.#encode(clientKey(ip));
    this.#lock();
    try {
      const { found } = this.#find();
      return found < 0 ? 0 : (this.#words[HEADER + found * SLOT + COUNT] as number);
    } finally {
      this.#unlock();
    }
  }

  remember(ip: string, untilMs: number): void {
    this.#encode(clientKey(ip));
    const h = this.#hash32(this.#key);
    const secs = Math.max(0, Math.min(0xffffffff, Math.ceil((untilMs - EPOCH_MS) / 1000)));
    Atomics.store(this.#marks, h % MARKS, (BigInt(h) << 32n) | BigInt(secs));
  }

  slowedUntil(ip: string): number {
    this.#encode(clientKey(ip));
    const h = this.#hash32(this.#key);
    const v = Atomics.load(this.#marks, h % MARKS);
    if (v === 0n || Number(BigInt.asUintN(64, v) >> 32n) !== h) return 0;
    return EPOCH_MS + Number(BigInt.asUintN(32, v)) * 1000;
  }

  /** Puts `key` (a client or network key, ASCII; cut at 32 bytes) into #key. */
  #encode(key: string): void {
    const k = this.#key;
    k.fill(0);
    const n = Math.min(key.length, KEY_WORDS * 4);
    for (let i = 0; i < n; i++) k[i >> 2] = (k[i >> 2] as number) | ((key.charCodeAt(i) & 0xff) << ((i & 3) * 8));
  }

  /** Seeded 32-bit hash of a key (unsigned). */
  #hash32(key: Int32Array): number {
    let h = (this.#words[SEED] as number) ^ 0x811c9dc5;
    for (let i = 0; i < KEY_WORDS; i++) {
      h = Math.imul(h ^ (key[i] as number), 0x01000193);
      h ^= h >>> 15;
    }
    return h >>> 0;
  }

  #hash(key: Int32Array): number {
    return this.#hash32(key) % this.#capacity;
  }

  /** The live slot holding the key, and where an insert would go (first freed or empty slot). */
  #find(): { found: number; insertAt: number } {
    const w = this.#words;
    const k = this.#key;
    let insertAt = -1;
    let i = this.#hash(k);
    for (let probes = 0; probes < this.#capacity; probes++, i = (i + 1) % this.#capacity) {
      const at = HEADER + i * SLOT;
      const state = w[at + STATE];
      if (state === 0) return { found: -1, insertAt: insertAt < 0 ? i : insertAt };
      if (state === FREED) {
        if (insertAt < 0) insertAt = i;
        continue;
      }
      let same = true;
      for (let j = 0; j < KEY_WORDS && same; j++) same = w[at + j] === k[j];
      if (same) return { found: i, insertAt };
    }
    return { found: -1, insertAt };
  }

  /** Drops the freed slots: live entries are re-inserted into a cleared table (lock held). */
  #rebuild(): void {
    const w = this.#words;
    const live: Int32Array[] = [];
    for (let i = 0; i < this.#capacity; i++) {
      const at = HEADER + i * SLOT;
      if (w[at + STATE] === LIVE) live.push(w.slice(at, at + SLOT));
    }
    w.fill(0, HEADER);
    w[USED] = live.length;
    for (const entry of live) {
      let i = this.#hash(entry);
      while (w[HEADER + i * SLOT + STATE] !== 0) i = (i + 1) % this.#capacity;
      w.set(entry, HEADER + i * SLOT);
    }
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#words, LOCK, 0, 1) !== 0) {
      // Held by another thread for a few hundred nanoseconds: spin, yielding the core briefly.
      Atomics.wait(this.#words, LOCK, 1, 0.05);
    }
  }

  #unlock(): void {
    Atomics.store(this.#words, LOCK, 0);
    Atomics.notify(this.#words, LOCK, 1);
  }
}
