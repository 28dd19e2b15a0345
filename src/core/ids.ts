// Identifiers. Branded types keep ids of different kinds from being mixed up at compile time.
// Connection and message ids are short, unique within a process lifetime and sortable by time,
// so a grep of the logs for one id follows a connection or message through every layer.

import { randomInt } from 'node:crypto';
import { threadId } from 'node:worker_threads';

export type AccountId = string & { readonly __brand: 'AccountId' };
export type DomainName = string & { readonly __brand: 'DomainName' };

const ALPHABET = '0123456789abcdefghijklmnopqrstuv'; // base32hex: sorts like the number
let counter = 0;
// 12 random bits and the low 4 bits of the thread id: the SMTP threads of one process
// (docs/architecture.md §8) each have their own counter, and never their own tag by chance.
const processTag = ((randomInt(0, 4096) << 4) | (threadId & 0xf)).toString(16).padStart(4, '0');

function base32(n: number, width: number): string {
  let s = '';
  for (let i = 0; i < width; i++) {
    s = ALPHABET[n % 32] + s;
    n = Math.floor(n / 32);
  }
  return s;
}

/** A new id such as `c-0mq8v7k2a3f1-00f1` (kind, time in ms, process tag + counter). */
export function newId(kind: 'c' | 'm' | 'q'): string {
  counter = (counter + 1) % 32 ** 4;
  return `${kind}${base32(Date.now(), 9)}${processTag}${base32(counter, 4)}`;
}
