// One IMAP session (RFC 9051 §3): the state machine and command dispatch. The state is a tagged
// union carrying its data; COMMANDS says in which states each command is allowed. Every failure
// becomes a tagged NO/BAD (unexpected ones NO [SERVERBUG], logged with the connection id);
// nothing a client sends can end the process.

import type { Authenticator } from '../auth/authenticator.ts';
import { decodePlain } from '../auth/sasl.ts';
import { errorMessage, isArclineError } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import { encodeMutf7 } from '../core/mutf7.ts';
import type { Directory, Principal } from '../directory/types.ts';
import type { MessageStore } from '../store/mailboxes.ts';
import type { SpooledMessage } from '../store/types.ts';
import type { ImapAccess } from './access.ts';
import { MailboxCommands } from './mailbox-commands.ts';
import { MessageCommands } from './message-commands.ts';
import type { Part } from './output.ts';
import type { SelectedView } from './selected.ts';
import type { Command, CommandName } from './wire/command.ts';
import type { Frame } from './wire/framer.ts';
import { parseCommand } from './wire/parse.ts';

export type SessionState =
  | { readonly kind: 'notAuthenticated' }
  | { readonly kind: 'authenticated'; readonly principal: Principal }
  | { readonly kind: 'selected'; readonly principal: Principal; readonly view: SelectedView }
  | { readonly kind: 'logout' };

type StateKind = SessionState['kind'];
const ANY: StateKind[] = ['notAuthenticated', 'authenticated', 'selected'];
const AUTHED: StateKind[] = ['authenticated', 'selected'];

const COMMANDS: Record<CommandName, readonly StateKind[]> = {
  CAPABILITY: ANY,
  NOOP: ANY,
  LOGOUT: ANY,
  ID: ANY,
  STARTTLS: ['notAuthenticated'],
  LOGIN: ['notAuthenticated'],
  AUTHENTICATE: ['notAuthenticated'],
  SELECT: AUTHED,
  EXAMINE: AUTHED,
  CREATE: AUTHED,
  DELETE: AUTHED,
  RENAME: AUTHED,
  SUBSCRIBE: AUTHED,
  UNSUBSCRIBE: AUTHED,
  LIST: AUTHED,
  LSUB: AUTHED,
  STATUS: AUTHED,
  APPEND: AUTHED,
  NAMESPACE: AUTHED,
  ENABLE: AUTHED,
  GETQUOTAROOT: AUTHED,
  COMPRESS: AUTHED,
  GETQUOTA: AUTHED,
  IDLE: AUTHED,
  CHECK: ['selected'],
  CLOSE: ['selected'],
  UNSELECT: ['selected'],
  EXPUNGE: ['selected'],
  SEARCH: ['selected'],
  FETCH: ['selected'],
  STORE: ['selected'],
  COPY: ['selected'],
  MOVE: ['selected'],
};

export interface SessionDeps {
  readonly directory: Directory;
  readonly store: MessageStore;
  /** The one login path (canonical identity, throttling, cache, bounded hashing). */
  readonly authenticator: Authenticator;
  readonly log: Logger;
  readonly hostname: string;
  /** Sends response parts in order. */
  readonly send: (parts: readonly Part[]) => Promise<void>;
  /** Writes text now, after everything sent before it, in one write (IDLE updates). */
  readonly push: (text: string) => void;
  /** Upgrades the connection after "OK Begin TLS" was sent. */
  readonly startTls: () => Promise<void>;
  readonly secure: () => boolean;
  readonly remoteAddress: string;
  /** Loopback clients may log in without TLS (like Dovecot). */
  readonly loopback: boolean;
  /** Turns on DEFLATE in both directions after "OK DEFLATE active" was sent (RFC 4978). */
  readonly startCompress?: () => Promise<void>;
  /** Largest message APPEND takes (RFC 7889 APPENDLIMIT). */
  readonly appendLimit: number;
  /** Spooled APPEND literals of the current command, by literal index. */
  readonly streamedLiteral: (index: number) => Promise<SpooledMessage>;
  /** Metrics and access lines (access.ts); absent in unit tests. */
  readonly access?: ImapAccess;
}

/** What the next input line belongs to, when it is not a command. */
type Waiting = { kind: 'sasl'; tag: string } | { kind: 'idle'; tag: string; stop: () => void } | null;

/** Extensions a client turns on (RFC 5161 ENABLE, or implicitly, RFC 7162 §3.1). */
export type Enabled = 'CONDSTORE' | 'QRESYNC' | 'UTF8=ACCEPT' | 'IMAP4rev2';

export class Session {
  state: SessionState = { kind: 'notAuthenticated' };
  readonly deps: SessionDeps;
  readonly enabled = new Set<Enabled>();
  #compressed = false;
  #waiting: Waiting = null;
  /** HIGHESTMODSEQ to announce before the next tagged reply (see enable). */
  #announceHighest: number | null = null;
  readonly #mailboxes: MailboxCommands;
  readonly #messages: MessageCommands;

  constructor(deps: SessionDeps) {
    this.deps = deps;
    this.#mailboxes = new MailboxCommands(this);
    this.#messages = new MessageCommands(this);
  }

  greeting(): string {
    return `* OK [CAPABILITY ${this.capabilities()}] ${this.deps.hostname} arcline IMAP ready`;
  }

  plaintextAllowed(): boolean {
    return this.deps.secure() || this.deps.loopback;
  }

  capabilities(): string {
    const caps = ['IMAP4rev1', 'IMAP4rev2', 'LITERAL+', 'SASL-IR', 'ID', 'ENABLE', 'IDLE'];
    if (this.state.kind === 'notAuthenticated') {
      if (!this.deps.secure()) caps.push('STARTTLS');
      caps.push(this.plaintextAllowed() ? 'AUTH=PLAIN' : 'LOGINDISABLED');
    } else {
      caps.push(
        'NAMESPACE',
        'UIDPLUS',
        'MOVE',
        'UNSELECT',
        'SPECIAL-USE',
        'CREATE-SPECIAL-USE',
        'CHILDREN',
        'CONDSTORE',
        'QRESYNC',
        'ESEARCH',
        'LIST-EXTENDED',
        'LIST-STATUS',
        'STATUS=SIZE',
        'QUOTA',
        'QUOTA=RES-STORAGE',
        `APPENDLIMIT=${this.deps.appendLimit}`,
        'UTF8=ACCEPT',
        'SEARCHRES',
        'BINARY',
        ...(this.deps.startCompress ? ['COMPRESS=DEFLATE'] : []),
      );
    }
    return caps.join(' ');
  }

  /** RFC 6855: mailbox names are UTF-8 on the wire once UTF8=ACCEPT is enabled. */
  get utf8(): boolean {
    // RFC 9051 §5.1: IMAP4rev2 names are UTF-8 too.
    return this.enabled.has('UTF8=ACCEPT') || this.enabled.has('IMAP4rev2');
  }

  get rev2(): boolean {
    return this.enabled.has('IMAP4rev2');
  }

  /** A mailbox name as sent to this client: UTF-8 after UTF8=ACCEPT, else modified UTF-7. */
  wireName(name: string): string {
    return this.utf8 ? name : encodeMutf7(name);
  }

  /** RFC 9208: would `extra` more bytes put the user over quota? */
  async overQuota(extra: number): Promise<boolean> {
    const limit = await this.deps.directory.quota(this.account);
    if (limit === null) return false;
    return (await this.deps.store.usage(this.account)) + extra > limit;
  }

  /** Turns an extension on for the rest of the session (and for the selected view). */
  enable(ext: Enabled): void {
    const before = this.enabled.has('CONDSTORE');
    if (ext === 'QRESYNC') this.enabled.add('CONDSTORE');
    this.enabled.add(ext);
    const v = this.view;
    // RFC 7162 §3.1: CONDSTORE turned on while a mailbox is selected: the client learns the
    // mailbox's HIGHESTMODSEQ (an untagged OK before the tagged reply). The highest MODSEQ of
    // the session's view: never above what the mailbox has, so a later CHANGEDSINCE misses nothing.
    if (v && !before && this.enabled.has('CONDSTORE')) this.#announceHighest = v.maxModseq(v.uids);
    if (v) {
      v.condstore = this.enabled.has('CONDSTORE');
      v.qresync = this.enabled.has('QRESYNC');
      v.rev2 = this.enabled.has('IMAP4rev2');
    }
  }

  get view(): SelectedView | null {
    return this.state.kind === 'selected' ? this.state.view : null;
  }

  get account(): AccountId {
    if (this.state.kind !== 'authenticated' && this.state.kind !== 'selected') throw new Error('not authenticated');
    return this.state.principal.accountId;
  }

  /** The tagged reply, after `untagged` lines (sent with it, in one write). */
  reply(tag: string, status: 'OK' | 'NO' | 'BAD', text: string, untagged: readonly string[] = []): Promise<void> {
    const highest = this.#announceHighest;
    this.#announceHighest = null;
    const parts = untagged.map((l) => `${l}\r\n`);
    if (highest !== null && this.view !== null) parts.push(`* OK [HIGHESTMODSEQ ${highest}] Highest\r\n`);
    parts.push(`${tag} ${status} ${text}\r\n`);
    const sent = this.deps.send(parts); // its text is written before this returns
    this.deps.access?.end(tag, status);
    return sent;
  }

  /** Pending unsolicited updates (expunges only when `allowExpunge`), then the tagged OK. */
  done(tag: string, text: string, allowExpunge = true): Promise<void> {
    return this.reply(tag, 'OK', text, this.view?.flush(allowExpunge) ?? []);
  }

  untagged(lines: readonly string[]): Promise<void> {
    return lines.length === 0 ? Promise.resolve() : this.deps.send(lines.map((l) => `${l}\r\n`));
  }

  /** Whether the command named `name` may carry a literal now; the framer asks before it sends
   *  "+" (RFC 9051 §7.5: the server may refuse a synchronizing literal with a tagged NO or BAD),
   *  so nothing a command cannot use in this state (APPEND before login) is ever read.
   *  null, or the text of the refusal. */
  literalRefusal(name: string): string | null {
    if (this.#waiting) return null; // a SASL response or DONE: the continuation says what is wrong
    const states = Object.hasOwn(COMMANDS, name) ? COMMANDS[name as CommandName] : undefined;
    if (!states) return 'Unknown command';
    return states.includes(this.state.kind) ? null : `${name} not allowed now`;
  }

  /** Handles one framed command (or a continuation line). */
  async handle(frame: Frame): Promise<void> {
    if (this.#waiting) return this.#continuation(frame);
    const parsed = parseCommand(frame);
    if (!parsed.ok) {
      this.deps.access?.unparsed('BAD');
      await this.deps.send([`${parsed.tag ?? '*'} BAD ${parsed.text}\r\n`]);
      return;
    }
    const cmd = parsed.command;
    this.deps.access?.begin(cmd.tag, cmd.name);
    if (!COMMANDS[cmd.name].includes(this.state.kind)) {
      await this.reply(cmd.tag, 'BAD', `${cmd.name} not allowed now`);
      return;
    }
    try {
      await this.#dispatch(cmd);
    } catch (e) {
      await this.#fail(cmd.tag, e);
    }
  }

  async #fail(tag: string, e: unknown): Promise<void> {
    if (isArclineError(e)) {
      const code = {
        NOT_FOUND: 'NONEXISTENT',
        EXISTS: 'ALREADYEXISTS',
        INVALID: 'CANNOT',
        CONFLICT: 'CANNOT',
        LIMIT: 'LIMIT',
        QUOTA: 'OVERQUOTA',
        REFUSED: 'CANNOT',
        TEMPORARY: 'UNAVAILABLE',
        CONFIG: 'SERVERBUG',
      }[e.code];
      await this.reply(tag, 'NO', `[${code}] ${e.message}`);
      return;
    }
    this.deps.log.error({ err: errorMessage(e) }, 'imap command failed');
    await this.reply(tag, 'NO', '[SERVERBUG] Internal error, try again later');
  }

  async #dispatch(cmd: Command): Promise<void> {
    switch (cmd.name) {
      case 'CAPABILITY':
        await this.untagged([`* CAPABILITY ${this.capabilities()}`]);
        return this.done(cmd.tag, 'CAPABILITY completed');
      case 'NOOP':
      case 'CHECK':
        // The polling commands: look at the files now (RFC 9051 §6.1.2, §6.4.1).
        await this.#syncSelected();
        return this.done(cmd.tag, `${cmd.name} completed`);
      case 'LOGOUT':
        await this.untagged(['* BYE Logging out']);
        await this.reply(cmd.tag, 'OK', 'LOGOUT completed');
        this.leave();
        this.state = { kind: 'logout' };
        return;
      case 'ID':
        // RFC 2971: answer with our name; the client's values go to the log.
        this.deps.log.info({ client: cmd.params }, 'imap client id');
        await this.untagged(['* ID ("name" "arcline")']);
        return this.done(cmd.tag, 'ID completed');
      case 'STARTTLS':
        if (this.deps.secure()) return this.reply(cmd.tag, 'BAD', 'TLS is already active');
        await this.reply(cmd.tag, 'OK', 'Begin TLS negotiation now');
        await this.deps.startTls();
        return;
      case 'LOGIN':
        return this.#login(cmd.tag, cmd.user, cmd.password);
      case 'AUTHENTICATE':
        return this.#authenticate(cmd.tag, cmd.mechanism, cmd.initial);
      case 'ENABLE': {
        // RFC 5161 §3.1: ENABLED lists what this command turned on; unknown names are ignored.
        const now: Enabled[] = [];
        for (const c of cmd.capabilities.map((x) => x.toUpperCase())) {
          // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
          const want: Enabled[] =
            c === 'QRESYNC'
              ? ['CONDSTORE', 'QRESYNC']
              : c === 'CONDSTORE' || c === 'UTF8=ACCEPT'
                ? [c]
                : c === 'IMAP4REV2'
                  ? ['IMAP4rev2']
                  : [];
          for (const w of want) {
            if (this.enabled.has(w)) continue;
            this.enable(w);
            if (c === w.toUpperCase()) now.push(w);
          }
        }
        await this.untagged([`* ENABLED${now.map((c) => ` ${c}`).join('')}`]);
        return this.done(cmd.tag, 'ENABLE completed');
      }
      case 'COMPRESS': {
        // RFC 4978 §3: only DEFLATE; once on, it stays on.
        if (!this.deps.startCompress || cmd.mechanism !== 'DEFLATE') {
          return this.reply(cmd.tag, 'BAD', `Unsupported compression mechanism ${cmd.mechanism.slice(0, 20)}`);
        }
        if (this.#compressed) return this.reply(cmd.tag, 'NO', '[COMPRESSIONACTIVE] DEFLATE is already active');
        this.#compressed = true;
        await this.reply(cmd.tag, 'OK', 'DEFLATE active');
        await this.deps.startCompress();
        return;
      }
      case 'NAMESPACE':
        await this.untagged(['* NAMESPACE (("" ".")) NIL NIL']);
        return this.done(cmd.tag, 'NAMESPACE completed');
      case 'IDLE':
        return this.#idle(cmd.tag);
      case 'SELECT':
      case 'EXAMINE':
      case 'CREATE':
      case 'DELETE':
      case 'RENAME':
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE':
      case 'LIST':
      case 'LSUB':
      case 'STATUS':
      case 'APPEND':
      case 'CLOSE':
      case 'UNSELECT':
      case 'GETQUOTAROOT':
      case 'GETQUOTA':
        return this.#mailboxes.run(cmd);
      default:
        return this.#messages.run(cmd);
    }
  }

  /** Reconciles the selected mailbox with its files; changes reach every session's queue. */
  async #syncSelected(): Promise<void> {
    const view = this.view;
    if (view) await view.mailbox.refresh({ origin: view });
  }

  async flushUpdates(allowExpunge: boolean): Promise<void> {
    const view = this.view;
    if (view) await this.untagged(view.flush(allowExpunge));
  }

  // ---- authentication (RFC 9051 §6.2) ----

  async #login(tag: string, user: string, password: string): Promise<void> {
    if (!this.plaintextAllowed()) {
      await this.reply(tag, 'NO', '[PRIVACYREQUIRED] Use STARTTLS or port 993 first');
      return;
    }
    await this.#verify(tag, user, password, 'LOGIN');
  }

  async #authenticate(tag: string, mechanism: string, initial: string | null): Promise<void> {
    if (mechanism !== 'PLAIN') return this.reply(tag, 'NO', '[CANNOT] Unsupported mechanism');
    if (!this.plaintextAllowed()) return this.reply(tag, 'NO', '[PRIVACYREQUIRED] Use STARTTLS or port 993 first');
    if (initial === null) {
      this.#waiting = { kind: 'sasl', tag };
      await this.deps.send(['+ \r\n']);
      return;
    }
    await this.#saslResponse(tag, initial);
  }

  async #saslResponse(tag: string, response: string): Promise<void> {
    if (response === '*') return this.reply(tag, 'BAD', 'Authentication cancelled');
    const creds = decodePlain(response);
    if (!creds) return this.reply(tag, 'BAD', 'Invalid SASL PLAIN response');
    await this.#verify(tag, creds.user, creds.password, 'PLAIN');
  }

  async #verify(tag: string, user: string, password: string, mechanism: 'LOGIN' | 'PLAIN'): Promise<void> {
    const { authenticator, log } = this.deps;
    const conn = log.bindings().conn;
    const result = await authenticator.login({
      service: 'imap',
      ip: this.deps.remoteAddress,
      username: user,
      password,
      mechanism,
      ...(typeof conn === 'string' ? { conn } : {}),
    });
    if (!result.ok) {
      // RFC 9051 §7.1: AUTHENTICATIONFAILED for wrong credentials; UNAVAILABLE for a temporary
      // refusal (too many failures of this address and account, or too many logins at once).
      if (result.reason === 'failed') return this.reply(tag, 'NO', '[AUTHENTICATIONFAILED] Invalid credentials');
      if (result.reason === 'throttled') {
        return this.reply(tag, 'NO', '[UNAVAILABLE] Too many failed logins, try again later');
      }
      return this.reply(tag, 'NO', '[UNAVAILABLE] Server busy, try again later');
    }
    this.state = { kind: 'authenticated', principal: result.principal };
    log.info({ user: result.principal.accountId }, 'imap login');
    this.deps.access?.login(result.principal.accountId);
    await this.reply(tag, 'OK', `[CAPABILITY ${this.capabilities()}] Logged in`);
  }

  // ---- IDLE (RFC 2177) ----

  async #idle(tag: string): Promise<void> {
    const view = this.view;
    let stop = () => {};
    if (view) {
      // RFC 2177: while idling, updates go out as they happen (expunges included): flushed and
      // written at once, one write for all the lines.
      view.onPending = () => {
        const lines = view.flush(true);
        if (lines.length > 0) this.deps.push(`${lines.join('\r\n')}\r\n`);
      };
      stop = () => {
        view.onPending = null;
      };
    }
    this.#waiting = { kind: 'idle', tag, stop };
    await this.deps.send(['+ idling\r\n']);
    await this.#syncSelected();
    await this.flushUpdates(true);
  }

  async #continuation(frame: Frame): Promise<void> {
    const w = this.#waiting;
    this.#waiting = null;
    const line = (frame.parts[0] ?? Buffer.alloc(0)).toString('latin1');
    if (w?.kind === 'sasl') {
      if (frame.parts.length > 1) return this.reply(w.tag, 'BAD', 'Unexpected literal');
      return this.#saslResponse(w.tag, line.trim());
    }
    if (w?.kind === 'idle') {
      w.stop();
      if (line.toUpperCase() !== 'DONE') return this.reply(w.tag, 'BAD', 'Expected DONE');
      return this.done(w.tag, 'IDLE terminated');
    }
  }

  /** Leaves the selected mailbox (CLOSE, UNSELECT, SELECT of another, LOGOUT, disconnect). */
  leave(): void {
    if (this.#waiting?.kind === 'idle') this.#waiting.stop();
    const view = this.view;
    if (!view) return;
    view.close();
    this.deps.store.accounts.release(this.account, view.mailbox);
    this.state = { kind: 'authenticated', principal: (this.state as { principal: Principal }).principal };
  }
}
