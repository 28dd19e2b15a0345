// Error taxonomy shared by every layer. Protocol code maps these to its wire replies in one
// place (smtp/replies.ts, later imap); the CLI prints `message` and exits non-zero.
// `code` is stable: tests and callers match on it, never on message text.

export type ErrorCode =
  | 'CONFIG' // configuration file is invalid
  | 'INVALID' // bad input from an operator or API caller (bad address, bad size ...)
  | 'NOT_FOUND' // the named domain/user/alias does not exist
  | 'EXISTS' // the object already exists
  | 'CONFLICT' // the object is not in a state that allows it now (e.g. a DKIM record not yet published)
  | 'TEMPORARY' // storage or dependency failure that may go away (maps to 4xx)
  | 'LIMIT' // an implementation limit was reached (IMAP NO [LIMIT], RFC 5530 §3)
  | 'QUOTA' // over quota
  | 'REFUSED'; // the recipient's own rules refuse the message (a Sieve reject at delivery: 5xx)

export class ArclineError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ArclineError';
  }
}

export function isArclineError(e: unknown, code?: ErrorCode): e is ArclineError {
  return e instanceof ArclineError && (code === undefined || e.code === code);
}

/** Message of any thrown value, for logs only (never shown to remote clients). */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
