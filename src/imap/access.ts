// What an IMAP session did, for the metrics and the access log (issue #14, docs/logging.md):
//   - arcline_imap_commands_total{command, status} at each tagged reply (pre-bound children;
//     command names come from the parser's closed set, anything unparsable is UNKNOWN);
//   - with [log] access = "all", one "imap command" line per tagged reply (name, status,
//     duration, bytes out; never the tag or the arguments);
//   - unless [log] access = "off", one "imap access" line when the session ends (user,
//     duration, commands, bytes in and out).

import type { Logger } from '../core/log.ts';
import { imapCommands, imapSessions } from '../core/metrics.ts';

export type AccessMode = 'all' | 'sessions' | 'off';

type Status = 'OK' | 'NO' | 'BAD';
type Children = Record<Status, { inc(): void }>;
const children = new Map<string, Children>();

function countFor(name: string): Children {
  let c = children.get(name);
  if (!c) {
    c = {
      OK: imapCommands.labels({ command: name, status: 'OK' }),
      NO: imapCommands.labels({ command: name, status: 'NO' }),
      BAD: imapCommands.labels({ command: name, status: 'BAD' }),
    };
    children.set(name, c);
  }
  return c;
}

export class ImapAccess {
  readonly #log: Logger;
  readonly #mode: AccessMode;
  readonly #ip: string;
  /** Bytes written to the client so far (the connection's output). */
  readonly #written: () => number;
  readonly #start = Date.now();
  #commands = 0;
  bytesIn = 0;
  #user: string | null = null;
  /** The command waiting for its tagged reply. */
  #tag = '';
  #name = '';
  #since = 0;
  #outAt = 0;

  constructor(log: Logger, mode: AccessMode, ip: string, written: () => number) {
    this.#log = log;
    this.#mode = mode;
    this.#ip = ip;
    this.#written = written;
  }

  /** A command was parsed; its tagged reply comes later (IDLE, AUTHENTICATE: much later). */
  begin(tag: string, name: string): void {
    this.#tag = tag;
    this.#name = name;
    this.#since = Date.now();
    if (this.#mode === 'all') this.#outAt = this.#written();
  }

  /** A tagged reply: ends the command begun with that tag. */
  end(tag: string, status: Status): void {
    if (tag !== this.#tag || this.#name === '') return;
    const name = this.#name;
    this.#name = '';
    this.#commands++;
    countFor(name)[status].inc();
    if (this.#mode !== 'all') return;
    this.#log.info(
      {
        access: 'imap-command',
        command: name,
        status,
        duration_ms: Date.now() - this.#since,
        bytes_out: this.#written() - this.#outAt,
      },
      'imap command',
    );
  }

  /** A line that was not a command (BAD or NO before any command name was known). */
  unparsed(status: 'NO' | 'BAD'): void {
    this.#commands++;
    countFor('UNKNOWN')[status].inc();
  }

  login(user: string): void {
    this.#user = user;
  }

  /** The connection closed: the session's line. */
  close(): void {
    imapSessions.inc();
    if (this.#mode === 'off') return;
    this.#log.info(
      {
        access: 'imap',
        protocol: 'imap',
        client: this.#ip,
        user: this.#user,
        commands: this.#commands,
        bytes_in: this.bytesIn,
        bytes_out: this.#written(),
        duration_ms: Date.now() - this.#start,
      },
      'imap access',
    );
  }
}
