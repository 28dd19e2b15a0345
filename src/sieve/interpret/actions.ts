// The actions a run collects (RFC 5228 §2.10) and their rules, as Pigeonhole applies them at
// interpretation time: keep and fileinto of one mailbox are one action (the later flags win,
// §2.10.3), a redirect to the same address is one, reject conflicts with anything that delivers
// or redirects and vacation with reject (RFC 5429 §2.1-2.2), one vacation (RFC 5230 §4), at most
// LIMITS.sieve.maxRedirects redirects and maxActions actions. A conflict is a run-time error.

import { LIMITS } from '../../core/limits.ts';
import type { SieveAction } from '../run-types.ts';

export class SieveRuntimeError extends Error {}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const INBOX = 'INBOX';

function sameMailbox(a: string, b: string): boolean {
  // RFC 3501 §5.1: INBOX is case-insensitive; other names are compared as given.
  return a === b || (a.toUpperCase() === INBOX && b.toUpperCase() === INBOX);
}

export class ActionSet {
  readonly actions: Mutable<SieveAction>[] = [];
  /** RFC 5228 §2.10.2: cancelled by keep, fileinto, redirect, discard, reject without :copy. */
  implicitKeep = true;

  private count(): void {
    const n = this.actions.filter((a) => a.kind !== 'duplicate-track').length;
    if (n >= LIMITS.sieve.maxActions) throw new SieveRuntimeError('total number of actions exceeds policy limit');
  }

  private has(kind: SieveAction['kind']): boolean {
    return this.actions.some((a) => a.kind === kind);
  }

  private noReject(): void {
    if (this.has('reject'))
      throw new SieveRuntimeError('reject/ereject action conflicts with other action: it tries to deliver the message');
  }

  store(mailbox: string, flags: readonly string[] | null, create: boolean, copy: boolean, keep: boolean): void {
    this.noReject();
    if (!copy) this.implicitKeep = false;
    for (const a of this.actions) {
      const box = a.kind === 'keep' ? INBOX : a.kind === 'fileinto' ? a.mailbox : null;
      if (box === null || !sameMailbox(box, mailbox)) continue;
      (a as { flags: readonly string[] | null }).flags = flags;
      if (a.kind === 'fileinto' && create) (a as { create: boolean }).create = true;
      return;
    }
    this.count();
    this.actions.push(keep ? { kind: 'keep', flags } : { kind: 'fileinto', mailbox, flags, create });
  }

  redirect(address: string, copy: boolean): void {
    this.noReject();
    if (!copy) this.implicitKeep = false;
    const same = this.actions.some((a) => a.kind === 'redirect' && a.address.toLowerCase() === address.toLowerCase());
    if (same) return;
    const n = this.actions.filter((a) => a.kind === 'redirect').length;
    if (n >= LIMITS.sieve.maxRedirects)
      throw new SieveRuntimeError(
        `number of redirect actions exceeds policy limit (${n + 1} > ${LIMITS.sieve.maxRedirects})`,
      );
    this.count();
    this.actions.push({ kind: 'redirect', address });
  }

  reject(reason: string, ereject: boolean): void {
    if (this.has('reject')) throw new SieveRuntimeError('duplicate reject/ereject action not allowed');
    if (this.actions.some((a) => a.kind === 'keep' || a.kind === 'fileinto' || a.kind === 'redirect'))
      throw new SieveRuntimeError('reject/ereject action conflicts with other action: it tries to deliver the message');
    if (this.has('vacation'))
      throw new SieveRuntimeError(
        'vacation action conflicts with other action: the reject action also sends a response',
      );
    this.implicitKeep = false;
    this.count();
    this.actions.push({ kind: 'reject', reason, ereject });
  }

  discard(): void {
    this.implicitKeep = false;
    if (this.has('discard')) return;
    this.count();
    this.actions.push({ kind: 'discard' });
  }

  vacation(v: Extract<SieveAction, { kind: 'vacation' }>): void {
    if (this.has('vacation')) throw new SieveRuntimeError('duplicate vacation action not allowed');
    if (this.has('reject'))
      throw new SieveRuntimeError(
        'vacation action conflicts with other action: the reject action also sends a response',
      );
    this.count();
    this.actions.push(v);
  }

  track(handle: string, id: string, seconds: number): void {
    if (this.actions.some((a) => a.kind === 'duplicate-track' && a.handle === handle && a.id === id)) return;
    this.actions.push({ kind: 'duplicate-track', handle, id, seconds });
  }
}
