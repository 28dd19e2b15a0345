// The store and the queue as an inbound SMTP thread sees them (docs/architecture.md §8): the
// same interfaces the SMTP service uses in the main thread. A message for local mailboxes only
// (nearly all of port 25) is written by this thread into the Maildir, with the same durability
// as anywhere (store/maildir/index.ts: fsync file, rename, fsync directory, before the 250), and
// the main thread is told afterwards, in batches, for its IDLE sessions and quota figures. A
// message with remote recipients (an alias forwarding outside) goes whole to the main thread,
// whose Dispatcher queues it (one queue) and delivers its local copies. An account's usage is
// asked of the main thread, which knows every thread's deliveries.

import { createWriteStream } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { threadId } from 'node:worker_threads';
import { ArclineError, type ErrorCode } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { DispatchRequest, DispatchResult } from '../../queue/dispatch.ts';
import type { DeliveredCopy, DeliveryTarget, MailStore, SpooledMessage, SpoolWriter } from '../../store/types.ts';
import type { Call, DeliveredNote, FromThread, ToThread, WireDispatch, WireMessage } from './protocol.ts';

type Reply = Extract<ToThread, { t: 'reply' }>;

export class Rpc {
  readonly #post: (m: FromThread, transfer?: ArrayBuffer[]) => void;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 1;

  constructor(post: (m: FromThread, transfer?: ArrayBuffer[]) => void) {
    this.#post = post;
  }

  call<T>(call: Call, transfer?: ArrayBuffer[]): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#post({ t: 'call', id, call }, transfer);
    });
  }

  settle(m: Reply): void {
    const w = this.#waiting.get(m.id);
    if (!w) return;
    this.#waiting.delete(m.id);
    if (m.ok) w.resolve(m.value);
    else w.reject(new ArclineError((m.error?.code as ErrorCode) ?? 'TEMPORARY', m.error?.message ?? 'call failed'));
  }
}

/** MailStore for the SMTP service in a thread: spools and delivers here (through a delivery-only
 *  Maildir store that never opens the index), asks the main thread for usage, and tells it of
 *  every copy delivered (one message per turn of the event loop). */
export class ThreadStore implements MailStore {
  readonly #rpc: Rpc;
  readonly #maildir: MailStore;
  readonly #post: (m: FromThread) => void;

  constructor(rpc: Rpc, maildir: MailStore, post: (m: FromThread) => void) {
    this.#rpc = rpc;
    this.#maildir = maildir;
    this.#post = post;
  }

  createSpool(): SpoolWriter {
    return this.#maildir.createSpool();
  }

  usage(account: AccountId): Promise<number> {
    return this.#rpc.call<number>({ op: 'usage', account });
  }

  /** The main thread is told of the copies before the caller can answer 250: a client that
   *  then asks the main thread (JMAP Email/changes, IMAP) finds them (a note posted on a later
   *  turn could arrive after the client's next request). */
  async deliver(targets: readonly DeliveryTarget[], msg: SpooledMessage): Promise<readonly DeliveredCopy[]> {
    const copies = await this.#maildir.deliver(targets, msg);
    const notes: DeliveredNote[] = copies.map((c) => ({
      account: c.account,
      mailbox: c.mailbox,
      size: c.size,
      path: c.path,
    }));
    if (notes.length > 0) this.#post({ t: 'delivered', copies: notes });
    return copies;
  }

  createAccount(): Promise<void> {
    return Promise.reject(new Error('not available in an SMTP thread'));
  }

  purgeAccount(): Promise<void> {
    return Promise.reject(new Error('not available in an SMTP thread'));
  }

  async close(): Promise<void> {
    await this.#maildir.close();
  }
}

let files = 0;

/** The message as it crosses: its bytes when small (one copy, moved, not cloned), else a file
 *  in the spool directory that the caller removes once the call returned. */
async function toWire(msg: SpooledMessage, spoolDir: string): Promise<{ wire: WireMessage; cleanup?: string }> {
  if (msg.size <= LIMITS.store.spoolMemoryBytes) {
    // Never from Buffer's shared pool: the ArrayBuffer is transferred.
    const bytes = new Uint8Array(new ArrayBuffer(msg.size));
    let at = 0;
    for await (const chunk of msg.open() as AsyncIterable<Buffer>) {
      if (at + chunk.length > bytes.length) throw new Error('message larger than its size');
      bytes.set(chunk, at);
      at += chunk.length;
    }
    return { wire: { size: at, bytes: at === bytes.length ? bytes : bytes.subarray(0, at) } };
  }
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  const path = join(spoolDir, `${process.pid}-${threadId}-handover-${++files}.eml`);
  await pipeline(msg.open(), createWriteStream(path, { flags: 'wx', mode: 0o600 }));
  return { wire: { size: msg.size, path }, cleanup: path };
}

/** The dispatcher as the acceptance pipeline sees it: local copies only -> this thread's store;
 *  anything for the queue, or for an account with a Sieve script (`sieve`: [sieve] enabled),
 *  -> the main thread's Dispatcher, which runs the scripts (queue/sieve-filter.ts). */
export function threadDispatcher(
  rpc: Rpc,
  store: MailStore,
  spoolDir: string,
  sieve = false,
): { dispatch(req: DispatchRequest): Promise<DispatchResult> } {
  return {
    async dispatch(req) {
      // A success notice (RFC 3461 NOTIFY=SUCCESS) is sent by the main thread's Dispatcher.
      const local = req.remote.length === 0 && (req.notifyDelivered?.length ?? 0) === 0;
      if (
        local &&
        !(sieve && (await rpc.call<boolean>({ op: 'filtered', accounts: req.local.map((t) => t.account) })))
      ) {
        return { copies: await store.deliver(req.local, req.message), queueId: null, queueIds: [] };
      }
      const { wire, cleanup } = await toWire(req.message, spoolDir);
      const transfer: ArrayBuffer[] = [];
      if ('bytes' in wire) transfer.push(wire.bytes.buffer as ArrayBuffer);
      // Every field crosses as it is (plain data), but the message, which crosses as its bytes.
      const out: WireDispatch = { ...req, message: wire };
      try {
        return await rpc.call<DispatchResult>({ op: 'dispatch', req: out }, transfer);
      } finally {
        if (cleanup) await unlink(cleanup).catch(() => {});
      }
    },
  };
}
