// The main thread's store and queue as an inbound SMTP thread sees them (docs/architecture.md
// §8): the same interfaces the SMTP service uses in the main thread, answered by calls over the
// thread's port. Only the spool is local: a message is received into this thread's memory (or a
// spool file when large) and handed over whole when it is delivered.

import { createWriteStream } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { threadId } from 'node:worker_threads';
import { ArclineError, type ErrorCode } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { DispatchRequest, DispatchResult } from '../../queue/dispatch.ts';
import { Spool } from '../../store/spool.ts';
import type { DeliveredCopy, MailStore, SpooledMessage, SpoolWriter } from '../../store/types.ts';
import type { Call, FromThread, ToThread, WireDispatch, WireMessage } from './protocol.ts';

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

/** MailStore for the SMTP service in a thread: spools here, asks the main thread for usage. */
export class RemoteStore implements MailStore {
  readonly #rpc: Rpc;
  readonly #spool: Spool;

  constructor(rpc: Rpc, spoolDir: string) {
    this.#rpc = rpc;
    this.#spool = new Spool(spoolDir, LIMITS.store.spoolMemoryBytes);
  }

  createSpool(): SpoolWriter {
    return this.#spool.create();
  }

  usage(account: AccountId): Promise<number> {
    return this.#rpc.call<number>({ op: 'usage', account });
  }

  deliver(): Promise<readonly DeliveredCopy[]> {
    return Promise.reject(new Error('deliveries go through the dispatcher'));
  }

  createAccount(): Promise<void> {
    return Promise.reject(new Error('not available in an SMTP thread'));
  }

  purgeAccount(): Promise<void> {
    return Promise.reject(new Error('not available in an SMTP thread'));
  }

  async close(): Promise<void> {}
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

/** The dispatcher as the receive path sees it: the request goes to the main thread. */
export function remoteDispatcher(
  rpc: Rpc,
  spoolDir: string,
): { dispatch(req: DispatchRequest): Promise<DispatchResult> } {
  return {
    async dispatch(req) {
      const { wire, cleanup } = await toWire(req.message, spoolDir);
      const transfer: ArrayBuffer[] = [];
      if ('bytes' in wire) transfer.push(wire.bytes.buffer as ArrayBuffer);
      const out: WireDispatch = {
        sender: req.sender,
        local: req.local.map((t) => ({
          account: t.account,
          ...(t.mailbox !== undefined ? { mailbox: t.mailbox } : {}),
          prefix: t.prefix,
        })),
        remote: req.remote,
        remotePrefix: req.remotePrefix,
        message: wire,
        origin: req.origin,
        logId: req.logId,
        smtputf8: req.smtputf8 ?? false,
        authUser: req.authUser ?? null,
      };
      try {
        return await rpc.call<DispatchResult>({ op: 'dispatch', req: out }, transfer);
      } finally {
        if (cleanup) await unlink(cleanup).catch(() => {});
      }
    },
  };
}
