// One socket to a milter, TCP or Unix: connect within a deadline, write with backpressure,
// read reply packets one at a time within a deadline. Plain fields, no stream layers: bytes go
// to the bounded PacketReader (codec.ts) as they arrive. Every failure (refused, closed, reset,
// timed out, malformed) rejects the waiting call with a MilterFailure and destroys the socket.

import net from 'node:net';
import type { MilterAddress } from '../../config/milter.ts';
import { MilterProtocolError, PacketReader, type RawPacket } from './codec.ts';

/** Why a session could not be carried out (on_failure applies). */
export class MilterFailure extends Error {
  readonly timeout: boolean;
  constructor(message: string, timeout = false) {
    super(message);
    this.timeout = timeout;
  }
}

export class MilterConnection {
  readonly #socket: net.Socket;
  readonly #reader = new PacketReader();
  #error: MilterFailure | null = null;
  #waiter: (() => void) | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk);
      } catch (e) {
        this.#fail(new MilterFailure(e instanceof MilterProtocolError ? e.message : String(e)));
        return;
      }
      this.#wake();
    });
    socket.on('error', (e) =>
      this.#fail(new MilterFailure(`socket: ${(e as NodeJS.ErrnoException).code ?? e.message}`)),
    );
    socket.on('close', () => this.#fail(new MilterFailure('connection closed by the milter')));
    socket.on('drain', () => this.#wake());
  }

  static open(address: MilterAddress, timeoutMs: number): Promise<MilterConnection> {
    return new Promise((resolve, reject) => {
      const socket =
        address.kind === 'unix'
          ? net.connect({ path: address.path })
          : net.connect({ host: address.host, port: address.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new MilterFailure('connect timed out', true));
      }, timeoutMs);
      const onError = (e: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new MilterFailure(`connect: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new MilterConnection(socket));
      });
    });
  }

  #fail(e: MilterFailure): void {
    this.#error ??= e;
    this.#socket.destroy();
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  /** Waits until `ready()` holds, an error happened, or the deadline passed. */
  async #until(ready: () => boolean, deadline: number, what: string): Promise<void> {
    while (!ready()) {
      if (this.#error) throw this.#error;
      const left = deadline - performance.now();
      if (left <= 0) {
        this.#fail(new MilterFailure(`${what} timed out`, true));
        throw this.#error;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Writes a packet; waits for the socket to drain first when the milter is not reading. */
  async send(packet: Buffer, deadline: number): Promise<void> {
    if (this.#error) throw this.#error;
    await this.#until(() => this.#socket.writableNeedDrain === false, deadline, 'write');
    this.#socket.write(packet);
  }

  /** The next packet from the milter, by `deadline` (a performance.now() value). */
  async next(deadline: number, what: string): Promise<RawPacket> {
    let p: RawPacket | null = null;
    const ready = () => {
      if (p) return true;
      try {
        p = this.#reader.next();
      } catch (e) {
        this.#fail(new MilterFailure(e instanceof Error ? e.message : String(e)));
      }
      return p !== null;
    };
    await this.#until(ready, deadline, what);
    return p as unknown as RawPacket;
  }

  /** Ends the session: the packet (SMFIC_QUIT) if still possible, then the socket. */
  close(last?: Buffer): void {
    if (!this.#error && last) this.#socket.end(last);
    else this.#socket.destroy();
    this.#error ??= new MilterFailure('closed');
    // A milter that never closes its side must not hold the socket open.
    setTimeout(() => this.#socket.destroy(), 1000).unref();
  }
}
