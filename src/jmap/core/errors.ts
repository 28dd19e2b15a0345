// JMAP errors (RFC 8620): request-level problems (§3.6.1, RFC 7807 problem details with the
// urn:ietf:params:jmap:error: type URIs), method-level errors (§3.6.2, an "error" response in
// place of the method's), and SetErrors (§5.3, per object in a /set response). Pure.

export const ERROR_URN = 'urn:ietf:params:jmap:error:';

/** §3.6.1 request-level error types. */
export type RequestErrorType = 'unknownCapability' | 'notJSON' | 'notRequest' | 'limit';

/** An RFC 7807 problem of §3.6.1; `limit` names the limit for type "limit". */
export interface Problem {
  readonly type: string;
  readonly status: number;
  readonly detail: string;
  readonly limit?: string;
}

export function problem(type: RequestErrorType, status: number, detail: string, limit?: string): Problem {
  return { type: ERROR_URN + type, status, detail, ...(limit ? { limit } : {}) };
}

/** §3.6.2 method-level error types, and those of the standard methods (§5.1-§5.6, §6.3). */
export type MethodErrorType =
  | 'serverUnavailable'
  | 'serverFail'
  | 'serverPartialFail'
  | 'unknownMethod'
  | 'invalidArguments'
  | 'invalidResultReference'
  | 'forbidden'
  | 'accountNotFound'
  | 'accountNotSupportedByMethod'
  | 'accountReadOnly'
  | 'requestTooLarge'
  | 'stateMismatch'
  | 'cannotCalculateChanges'
  | 'anchorNotFound'
  | 'unsupportedSort'
  | 'unsupportedFilter'
  | 'tooManyChanges'
  | 'fromAccountNotFound'
  | 'fromAccountNotSupportedByMethod';

/** Thrown by method handlers and the framework helpers; becomes ["error", {type, ...}, callId]. */
export class MethodError extends Error {
  readonly type: MethodErrorType;
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(type: MethodErrorType, description?: string, extra: Record<string, unknown> = {}, cause?: unknown) {
    super(description ?? type, cause === undefined ? undefined : { cause });
    this.type = type;
    this.extra = description ? { description, ...extra } : extra;
  }

  toArgs(): Record<string, unknown> {
    return { type: this.type, ...this.extra };
  }
}

/** §5.3 SetError types (and §5.4, §6.3 ones). */
export type SetErrorType =
  | 'forbidden'
  | 'overQuota'
  | 'tooLarge'
  | 'rateLimit'
  | 'notFound'
  | 'invalidPatch'
  | 'willDestroy'
  | 'invalidProperties'
  | 'singleton'
  | 'alreadyExists'
  | 'blobNotFound'
  | 'tooManyKeywords'
  | 'tooManyMailboxes'
  // RFC 8621 §2.5 (Mailbox/set destroy)
  | 'mailboxHasChild'
  | 'mailboxHasEmail'
  // RFC 8621 §6.3, §7.5 (Identity/set, EmailSubmission/set)
  | 'forbiddenFrom'
  | 'forbiddenMailFrom'
  | 'forbiddenToSend'
  | 'invalidEmail'
  | 'tooManyRecipients'
  | 'noRecipients'
  | 'invalidRecipients'
  | 'cannotUnsend';

export interface SetError {
  readonly type: SetErrorType;
  readonly description?: string;
  /** invalidProperties: the properties that were invalid. */
  readonly properties?: readonly string[];
  /** alreadyExists: the existing record. */
  readonly existingId?: string;
  /** blobNotFound (RFC 8621 §4.6): the blob ids not found. */
  readonly notFound?: readonly string[];
}

export function setError(type: SetErrorType, description?: string, properties?: readonly string[]): SetError {
  return { type, ...(description ? { description } : {}), ...(properties ? { properties } : {}) };
}

/** Thrown by a /set handler for one object: the framework files it under notCreated,
 *  notUpdated or notDestroyed and goes on with the next. */
export class SetFailure extends Error {
  readonly error: SetError;

  constructor(
    type: SetErrorType,
    description?: string,
    properties?: readonly string[],
    extra: Pick<SetError, 'existingId' | 'notFound'> = {},
  ) {
    super(description ?? type);
    this.error = { ...setError(type, description, properties), ...extra };
  }
}
