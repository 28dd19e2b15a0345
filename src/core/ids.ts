// Identifiers. Branded types keep ids of different kinds from being mixed up at compile time.
// Connection and message ids are short, unique within a process lifetime and sortable by time,
// so a grep of the logs for one id follows a connection or message through every layer.

import { randomBytes } from 'node:crypto';

export type AccountId = string & { readonly __brand: 'AccountId' };
export type DomainName = string & { readonly __brand: 'DomainName' };

const ALPHABET = '0123456789abcdefghijklmnopqrstuv'; // base32hex: sorts like the number
let counter = 0;
const processTag = randomBytes(2).toString('hex');

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
