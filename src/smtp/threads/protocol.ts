// What the main thread and the inbound SMTP threads say to each other (docs/architecture.md §8).
// Everything crosses as structured clones; Buffers arrive as Uint8Array and are re-wrapped.
//
//   main -> thread   start (TLS pair), tls (a new pair after SIGHUP), close (graceful stop),
//                    metrics (a scrape), reply (an answer to a call)
//   thread -> main   bound (its listening addresses), listening, log (JSON lines, batched),
//                    delivered (copies it wrote itself, batched), call (dispatch a message
//                    with remote recipients or Sieve scripts, an account's usage, a
//                    connection's rate, whether a Sieve script runs for an account),
//                    offence (towards a ban), dmarc (report rows, batched),
//                    metrics, closed

import type { AddressInfo } from 'node:net';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../../config/schema.ts';
import type { SharedSlotsInit } from '../../core/shared-slots.ts';
import type { Offence } from '../../defense/types.ts';
import type { DispatchRequest } from '../../queue/dispatch.ts';
import type { DmarcRow } from '../../reports/dmarc-aggregate.ts';
import type { DeliveryTarget } from '../../store/types.ts';
import type { TlsPair } from '../../tls/certs.ts';

export interface ThreadInit {
  readonly config: Config;
  /** Addresses to bind with SO_REUSEPORT: the configured ones for the first thread, the
   *  concrete ones it bound (port 0 resolved) for the others. */
  readonly addresses: readonly string[];
  readonly slots: SharedSlotsInit;
}

/** A message handed to the main thread: in memory, or in a file the thread owns until the
 *  call returns. */
export type WireMessage =
  | { readonly size: number; readonly bytes: Uint8Array }
  | { readonly size: number; readonly path: string };

/** A delivery target as it crosses (structured clone turns a Buffer into a Uint8Array). */
export type WireTarget = Omit<DeliveryTarget, 'account' | 'prefix'> & {
  readonly account: string;
  readonly prefix: Uint8Array;
};

/** A DispatchRequest as it crosses: the same fields, the message as a WireMessage. */
export type WireDispatch = Omit<DispatchRequest, 'local' | 'remotePrefix' | 'message'> & {
  readonly local: readonly WireTarget[];
  readonly remotePrefix: Uint8Array;
  readonly message: WireMessage;
};

export interface DeliveredNote {
  readonly account: string;
  readonly mailbox: string;
  readonly size: number;
  /** Where the copy is (a cluster's node indexes that file at once: store/maildir/account.ts). */
  readonly path: string;
}

export type Call =
  | { readonly op: 'dispatch'; readonly req: WireDispatch }
  | { readonly op: 'usage'; readonly account: string }
  /** A new connection from `ip`: the rate limit it is over (defense/rate-limits.ts), or null. */
  | { readonly op: 'rate'; readonly ip: string }
  /** Whether a Sieve script runs for one of these accounts (then the main thread delivers). */
  | { readonly op: 'filtered'; readonly accounts: readonly string[] };

export type ToThread =
  | { readonly t: 'start'; readonly tls: TlsPair }
  | { readonly t: 'tls'; readonly tls: TlsPair }
  | { readonly t: 'close' }
  | { readonly t: 'metrics'; readonly id: number }
  | {
      readonly t: 'reply';
      readonly id: number;
      readonly ok: boolean;
      readonly value?: unknown;
      readonly error?: { readonly message: string; readonly code?: string };
    };

export type FromThread =
  | { readonly t: 'bound'; readonly addresses: readonly AddressInfo[] }
  | { readonly t: 'listening' }
  | { readonly t: 'log'; readonly lines: string }
  /** Copies this thread delivered itself (durable already): for IDLE sessions and quotas. */
  | { readonly t: 'delivered'; readonly copies: readonly DeliveredNote[] }
  | { readonly t: 'call'; readonly id: number; readonly call: Call }
  /** An offence towards a ban (defense/bans.ts counts them in the main thread). */
  | { readonly t: 'offence'; readonly ip: string; readonly kind: Offence }
  /** DMARC report rows counted here (reports/dmarc-recorder.ts), batched. */
  | { readonly t: 'dmarc'; readonly rows: readonly DmarcRow[] }
  | { readonly t: 'metrics'; readonly id: number; readonly metrics: MetricObjectWithValues<MetricValue<string>>[] }
  | {
      readonly t: 'failed';
      readonly error: string;
      /** A bind error's code and address (EADDRINUSE ...), for server.ts's one-line reason. */
      readonly code?: string;
      readonly address?: string;
      readonly port?: number;
    }
  | { readonly t: 'closed' };

export const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
