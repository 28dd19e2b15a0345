// One ManageSieve session (RFC 5804) as a state machine over commands from the framer
// (wire.ts): not authenticated → (AUTHENTICATE) → authenticated → (UNAUTHENTICATE) → not
// authenticated; LOGOUT ends it. Scripts are reached through SieveScripts only
// (sieve/store-types.ts), logins through the shared Authenticator (auth/), so failed logins
// count with IMAP's and submission's and slow the attacker alone.
// The connection (connection.ts) owns the socket, deadlines and TLS; the session only answers.

import type { Authenticator } from '../auth/authenticator.ts';
import { SaslExchange, type SaslStep } from '../auth/sasl-exchange.ts';
import { errorMessage } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { formatError } from '../sieve/ast.ts';
import { CAPABILITIES } from '../sieve/specs.ts';
import { isSieveStoreError, type SieveScripts, SieveStoreError } from '../sieve/store-types.ts';
import { checkScript } from '../sieve/validate.ts';
import { bytesOf, response, type Token, wireString } from './wire.ts';

export interface SessionDeps {
  readonly scripts: SieveScripts;
  readonly authenticator: Authenticator;
  readonly log: Logger;
  readonly remoteAddress: string;
  readonly loopback: boolean;
  /** Largest script ([sieve] max_script_size). */
  readonly maxScriptBytes: number;
  secure(): boolean;
  send(bytes: Buffer): Promise<void>;
  /** Answered OK to STARTTLS: switch to TLS before reading on. */
  startTls(): Promise<void>;
}

export type SessionState =
  | { readonly kind: 'unauthenticated' }
  | { readonly kind: 'sasl'; readonly exchange: SaslExchange }
  | { readonly kind: 'authenticated'; readonly account: AccountId }
  | { readonly kind: 'logout' };

/** What the connection does after a command. */
export type After = 'continue' | 'close';

const SIEVE_EXTENSIONS = [...CAPABILITIES].join(' ');

export class Session {
  readonly #d: SessionDeps;
  state: SessionState = { kind: 'unauthenticated' };
  /** Errors so far (bad commands, failed logins); BYE past LIMITS.managesieve.maxErrors. */
  errors = 0;

  constructor(deps: SessionDeps) {
    this.#d = deps;
  }

  get authenticated(): boolean {
    return this.state.kind === 'authenticated';
  }

  /** The largest literal the framer may accept now: a script once logged in, else an
   *  AUTHENTICATE response. */
  literalLimit(): number {
    return this.authenticated ? this.#d.maxScriptBytes : LIMITS.managesieve.preauthLiteralBytes;
  }

  /** RFC 5804 §2.1: plaintext SASL only under TLS, or from loopback (the rule of IMAP's
   *  LOGINDISABLED, imap/session.ts). */
  plaintextAllowed(): boolean {
    return this.#d.secure() || this.#d.loopback;
  }

  /** RFC 5804 §1.7: the capability lines and OK; the greeting, and the answer to CAPABILITY
   *  and to a completed STARTTLS (§2.2). */
  capability(): Buffer {
    const lines = [
      `"IMPLEMENTATION" "arcline"`,
      // Without TLS (and off loopback) no mechanism is offered: §1.7 "SASL" may be empty.
      `"SASL" "${this.plaintextAllowed() ? 'PLAIN LOGIN' : ''}"`,
      `"SIEVE" "${SIEVE_EXTENSIONS}"`,
      `"MAXREDIRECTS" "${LIMITS.sieve.maxRedirects}"`,
      ...(this.#d.secure() ? [] : ['"STARTTLS"']),
      ...(this.state.kind === 'authenticated'
        ? [bytesOf(['"OWNER" ', wireString(this.state.account)]).toString()]
        : []),
      `"VERSION" "1.0"`,
    ];
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n`), response('OK', null, 'arcline ManageSieve ready')]);
  }

  /** A command or, during AUTHENTICATE, the client's response. */
  async handle(tokens: readonly Token[]): Promise<After> {
    if (this.state.kind === 'sasl') return this.#saslResponse(this.state.exchange, tokens);
    const first = tokens[0];
    if (first?.kind !== 'atom') return this.#bad('Expected a command name');
    const name = first.value.toUpperCase();
    const args = tokens.slice(1);
    try {
      return await this.#command(name, args);
    } catch (e) {
      if (isSieveStoreError(e)) return this.#storeRefusal(e);
      this.#d.log.error({ err: errorMessage(e), command: name }, 'managesieve command failed');
      await this.#d.send(response('NO', 'TRYLATER', 'Internal error, try again later'));
      return 'continue';
    }
  }

  /** A line the framer could not parse (wire.ts): refused, and counted as an error. */
  refuse(text: string): Promise<After> {
    if (this.state.kind === 'sasl') this.state = { kind: 'unauthenticated' };
    return this.#bad(text);
  }

  async #command(name: string, args: readonly Token[]): Promise<After> {
    const d = this.#d;
    switch (name) {
      case 'CAPABILITY':
        if (args.length > 0) return this.#bad('CAPABILITY takes no arguments');
        await d.send(this.capability());
        return 'continue';
      case 'NOOP': {
        // RFC 5804 §2.11.2: an optional string, echoed back in a TAG response code.
        if (args.length > 1) return this.#bad('NOOP takes at most one argument');
        const tag = args.length === 1 ? stringArg(args[0]) : null;
        if (args.length === 1 && tag === null) return this.#bad('NOOP takes a string');
        const code = tag === null ? null : `TAG ${bytesOf([wireString(tag)]).toString('utf8')}`;
        await d.send(response('OK', code, 'Done'));
        return 'continue';
      }
      case 'LOGOUT':
        // RFC 5804 §2.3: OK, then the server closes.
        this.state = { kind: 'logout' };
        await d.send(response('OK', null, 'Logout completed'));
        return 'close';
      case 'STARTTLS':
        return this.#startTls(args);
      case 'AUTHENTICATE':
        return this.#authenticate(args);
    }
    if (this.state.kind !== 'authenticated') {
      if (KNOWN.has(name)) return this.#bad('Authenticate first');
      return this.#bad('Unknown command');
    }
    const account = this.state.account;
    const scripts = d.scripts;
    switch (name) {
      case 'UNAUTHENTICATE':
        // RFC 5804 §2.14.1
        if (args.length > 0) return this.#bad('UNAUTHENTICATE takes no arguments');
        this.state = { kind: 'unauthenticated' };
        await d.send(response('OK', null, 'Unauthenticated'));
        return 'continue';
      case 'HAVESPACE': {
        // RFC 5804 §2.5
        const [n, size] = args;
        const script = nameArg(n);
        if (script === null || size?.kind !== 'number' || args.length !== 2) {
          return this.#bad('Usage: HAVESPACE name size');
        }
        const refusal = await scripts.haveSpace(account, script, size.value);
        if (refusal) return this.#storeRefusal(refusal);
        await d.send(response('OK', null, 'Putscript would succeed'));
        return 'continue';
      }
      case 'PUTSCRIPT': {
        // RFC 5804 §2.6
        const script = nameArg(args[0]);
        const content = args[1]?.kind === 'string' ? args[1].value : null;
        if (script === null || content === null || args.length !== 2) return this.#bad('Usage: PUTSCRIPT name script');
        if (!(await this.#compiles(content))) return 'continue';
        await scripts.put(account, script, content);
        d.log.info({ account, script, size: content.length }, 'managesieve putscript');
        await d.send(response('OK', null, 'Script stored'));
        return 'continue';
      }
      case 'CHECKSCRIPT': {
        // RFC 5804 §2.12
        const content = args[0]?.kind === 'string' ? args[0].value : null;
        if (content === null || args.length !== 1) return this.#bad('Usage: CHECKSCRIPT script');
        if (await this.#compiles(content)) await d.send(response('OK', null, 'Script is valid'));
        return 'continue';
      }
      case 'LISTSCRIPTS': {
        // RFC 5804 §2.7: one line per script, the active one marked ACTIVE.
        if (args.length > 0) return this.#bad('LISTSCRIPTS takes no arguments');
        const list = await scripts.list(account);
        const parts = list.flatMap((s) => [wireString(s.name), s.active ? ' ACTIVE\r\n' : '\r\n']);
        await d.send(Buffer.concat([bytesOf(parts), response('OK', null, 'Listscripts completed')]));
        return 'continue';
      }
      case 'SETACTIVE': {
        // RFC 5804 §2.8: "" deactivates.
        const target = args[0] ? stringArg(args[0]) : null;
        if (target === null || args.length !== 1) return this.#bad('Usage: SETACTIVE name');
        await scripts.setActive(account, target === '' ? null : target);
        await d.send(response('OK', null, target === '' ? 'No script active' : 'Script activated'));
        return 'continue';
      }
      case 'GETSCRIPT': {
        // RFC 5804 §2.9: the script as a literal, then OK.
        const script = nameArg(args[0]);
        if (script === null || args.length !== 1) return this.#bad('Usage: GETSCRIPT name');
        const content = await scripts.get(account, script);
        if (content === null) throw new SieveStoreError('NONEXISTENT', 'There is no script by that name');
        await d.send(
          Buffer.concat([
            Buffer.from(`{${content.length}}\r\n`),
            content,
            Buffer.from('\r\n'),
            response('OK', null, 'Getscript completed'),
          ]),
        );
        return 'continue';
      }
      case 'DELETESCRIPT': {
        // RFC 5804 §2.10
        const script = nameArg(args[0]);
        if (script === null || args.length !== 1) return this.#bad('Usage: DELETESCRIPT name');
        await scripts.delete(account, script);
        await d.send(response('OK', null, 'Script deleted'));
        return 'continue';
      }
      case 'RENAMESCRIPT': {
        // RFC 5804 §2.11.1
        const from = nameArg(args[0]);
        const to = nameArg(args[1]);
        if (from === null || to === null || args.length !== 2) return this.#bad('Usage: RENAMESCRIPT old new');
        await scripts.rename(account, from, to);
        await d.send(response('OK', null, 'Script renamed'));
        return 'continue';
      }
    }
    return this.#bad('Unknown command');
  }

  /** RFC 5804 §2.6: a script that does not compile is refused with the errors, line numbers
   *  included; several lines go as a literal (as Pigeonhole sends them). */
  async #compiles(content: Buffer): Promise<boolean> {
    const result = checkScript(content);
    if (result.ok) return true;
    const text = result.errors.map(formatError).join('\r\n');
    await this.#d.send(response('NO', null, text));
    return false;
  }

  async #startTls(args: readonly Token[]): Promise<After> {
    if (args.length > 0) return this.#bad('STARTTLS takes no arguments');
    if (this.#d.secure()) return this.#bad('TLS is already active');
    if (this.state.kind !== 'unauthenticated') return this.#bad('STARTTLS only before authentication');
    await this.#d.send(response('OK', null, 'Begin TLS negotiation now'));
    await this.#d.startTls();
    // RFC 5804 §2.2: "After the TLS layer is established, the server MUST re-issue the
    // capability results, followed by an OK response."
    if (this.#d.secure()) await this.#d.send(this.capability());
    return this.#d.secure() ? 'continue' : 'close';
  }

  async #authenticate(args: readonly Token[]): Promise<After> {
    // RFC 5804 §2.1: AUTHENTICATE mechanism [initial-response]
    if (this.state.kind !== 'unauthenticated') return this.#bad('Already authenticated');
    const mech = args[0] ? stringArg(args[0])?.toUpperCase() : undefined;
    if (mech === undefined || args.length > 2) return this.#bad('Usage: AUTHENTICATE mechanism [response]');
    if (!this.plaintextAllowed()) {
      // RFC 5804 §1.3 ENCRYPT-NEEDED: "the operation is not permitted without TLS"
      return this.#no('ENCRYPT-NEEDED', 'Use STARTTLS first');
    }
    if (mech !== 'PLAIN' && mech !== 'LOGIN') return this.#no(null, 'Unsupported mechanism');
    let initial: string | null = null;
    if (args[1]) {
      initial = stringArg(args[1]);
      if (initial === null) return this.#bad('Invalid initial response');
    }
    const exchange = new SaslExchange(mech);
    return this.#saslStep(exchange, exchange.start(initial));
  }

  async #saslResponse(exchange: SaslExchange, tokens: readonly Token[]): Promise<After> {
    // RFC 5804 §2.1: the client answers a challenge with a string, or "*" to cancel.
    const answer = tokens.length === 1 && tokens[0] ? stringArg(tokens[0]) : null;
    if (answer === null) {
      this.state = { kind: 'unauthenticated' };
      return this.#bad('Expected a SASL response string');
    }
    return this.#saslStep(exchange, exchange.step(answer));
  }

  async #saslStep(exchange: SaslExchange, step: SaslStep): Promise<After> {
    if (step.kind === 'challenge') {
      this.state = { kind: 'sasl', exchange };
      await this.#d.send(bytesOf([wireString(step.text), '\r\n']));
      return 'continue';
    }
    this.state = { kind: 'unauthenticated' };
    if (step.kind === 'refuse') {
      return step.reason === 'canceled'
        ? this.#no(null, 'Authentication canceled')
        : this.#bad('Cannot decode the SASL response');
    }
    const conn = this.#d.log.bindings().conn;
    const result = await this.#d.authenticator.login({
      service: 'managesieve',
      ip: this.#d.remoteAddress,
      username: step.username,
      password: step.password,
      mechanism: exchange.mechanism,
      ...(typeof conn === 'string' ? { conn } : {}),
    });
    if (result.ok) {
      this.state = { kind: 'authenticated', account: result.principal.accountId };
      await this.#d.send(response('OK', null, 'Logged in'));
      return 'continue';
    }
    if (result.reason === 'failed') return this.#error('NO', null, 'Authentication failed');
    // Throttled or busy: temporary (RFC 5804 §1.3 TRYLATER).
    return this.#error('NO', 'TRYLATER', 'Too many failures, try again later');
  }

  async #storeRefusal(e: SieveStoreError): Promise<After> {
    const code = e.code === 'BADNAME' ? null : e.code;
    await this.#d.send(response('NO', code, e.message));
    return 'continue';
  }

  #no(code: string | null, text: string): Promise<After> {
    return this.#error('NO', code, text);
  }

  #bad(text: string): Promise<After> {
    return this.#error('NO', null, text);
  }

  /** A refusal that counts as an error; past the bound, BYE. */
  async #error(kind: 'NO', code: string | null, text: string): Promise<After> {
    this.errors++;
    if (this.errors > LIMITS.managesieve.maxErrors) {
      await this.#d.send(response('BYE', null, 'Too many errors'));
      return 'close';
    }
    await this.#d.send(response(kind, code, text));
    return 'continue';
  }
}

const KNOWN = new Set([
  'UNAUTHENTICATE',
  'HAVESPACE',
  'PUTSCRIPT',
  'CHECKSCRIPT',
  'LISTSCRIPTS',
  'SETACTIVE',
  'GETSCRIPT',
  'DELETESCRIPT',
  'RENAMESCRIPT',
]);

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A string argument as UTF-8 text, or null (not a string, or not valid UTF-8). */
function stringArg(t: Token | undefined): string | null {
  if (t?.kind !== 'string') return null;
  try {
    return UTF8.decode(t.value);
  } catch {
    return null;
  }
}

/** A script name argument (its rules are the store's: RFC 5804 §1.6). */
function nameArg(t: Token | undefined): string | null {
  return stringArg(t);
}
