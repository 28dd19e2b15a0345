// The method registry (capability -> methods) and the processing of a Request (RFC 8620 §3.5):
// method calls run one after another, in order; each sees the responses before it (result
// references, §3.7) and the creation ids made so far (§3.3). A handler throws MethodError for
// a method-level error (§3.6.2); anything else it throws is serverFail (and logged by the
// caller through `onFailure`). Pure of I/O.

import type { AccountId } from '../../core/ids.ts';
import { MethodError } from './errors.ts';
import { type Invocation, type JmapRequest, type JmapResponse, resolveReferences } from './request.ts';

export const CORE_CAPABILITY = 'urn:ietf:params:jmap:core';

/** The limits of the core capability (RFC 8620 §2) the helpers enforce. */
export interface CoreLimits {
  readonly maxSizeUpload: number;
  readonly maxConcurrentUpload: number;
  readonly maxSizeRequest: number;
  readonly maxConcurrentRequests: number;
  readonly maxCallsInRequest: number;
  readonly maxObjectsInGet: number;
  readonly maxObjectsInSet: number;
}

export interface MethodContext {
  /** The signed-in user's account (the only one it may use). */
  readonly account: AccountId;
  /** Its JMAP account id (session.ts accountIdOf). */
  readonly accountId: string;
  readonly limits: CoreLimits;
  /** The capabilities the request names in `using`. */
  readonly using: ReadonlySet<string>;
  /** Creation id -> id, for the whole request (§3.3); /set create adds to it. */
  readonly createdIds: Map<string, string>;
  /** Responses to add after this method's own (e.g. the implicit /set of /copy, §5.4). */
  readonly followUps: Invocation[];
  /** The call id of the method being run. */
  readonly callId: string;
}

export type MethodHandler = (
  args: Record<string, unknown>,
  ctx: MethodContext,
) => Promise<Record<string, unknown>> | Record<string, unknown>;

export class MethodRegistry {
  readonly #methods = new Map<string, { capability: string; handler: MethodHandler }>();
  readonly #capabilities = new Map<string, Record<string, unknown>>();
  readonly #accountCapabilities = new Map<string, Record<string, unknown>>();

  /** A capability with its session-level value (§2 capabilities) and, for a data type's
   *  capability, its value in each account's accountCapabilities (e.g. RFC 8621 §1.3.2: the
   *  submission capability is {} in the session, its limits are the account's). */
  capability(urn: string, value: Record<string, unknown> = {}, accountValue?: Record<string, unknown>): this {
    this.#capabilities.set(urn, value);
    if (accountValue) this.#accountCapabilities.set(urn, accountValue);
    return this;
  }

  /** The account-level values given to capability(). */
  accountCapabilities(): ReadonlyMap<string, Record<string, unknown>> {
    return this.#accountCapabilities;
  }

  method(capability: string, name: string, handler: MethodHandler): this {
    if (!this.#capabilities.has(capability)) throw new Error(`capability ${capability} not registered`);
    this.#methods.set(name, { capability, handler });
    return this;
  }

  capabilities(): ReadonlyMap<string, Record<string, unknown>> {
    return this.#capabilities;
  }

  names(): string[] {
    return [...this.#methods.keys()];
  }

  lookup(name: string): { capability: string; handler: MethodHandler } | undefined {
    return this.#methods.get(name);
  }
}

export interface ProcessOptions {
  readonly account: AccountId;
  readonly accountId: string;
  readonly limits: CoreLimits;
  readonly sessionState: string;
  /** Told of each call's outcome ("ok" or the error type), for metrics. */
  readonly onCall?: (name: string, result: string) => void;
  /** Told of an unexpected exception (answered serverFail). */
  readonly onFailure?: (name: string, error: unknown) => void;
}

/** §3.5: processes every method call in order and builds the Response object. */
export async function processRequest(
  registry: MethodRegistry,
  request: JmapRequest,
  opts: ProcessOptions,
): Promise<JmapResponse> {
  const using = new Set(request.using);
  const createdIds = new Map(Object.entries(request.createdIds ?? {}));
  const responses: Invocation[] = [];
  for (const [name, rawArgs, callId] of request.methodCalls) {
    const followUps: Invocation[] = [];
    try {
      const method = registry.lookup(name);
      // A method whose capability the request does not use is unknown to it (§3.3 using).
      if (!method || !using.has(method.capability)) throw new MethodError('unknownMethod', `unknown method ${name}`);
      const args = resolveReferences(rawArgs, responses);
      const ctx: MethodContext = {
        account: opts.account,
        accountId: opts.accountId,
        limits: opts.limits,
        using,
        createdIds,
        followUps,
        callId,
      };
      const result = await method.handler(args, ctx);
      responses.push([name, result, callId], ...followUps);
      opts.onCall?.(name, 'ok');
    } catch (e) {
      const err = e instanceof MethodError ? e : new MethodError('serverFail');
      if (!(e instanceof MethodError)) opts.onFailure?.(name, e);
      else if (e.cause !== undefined) opts.onFailure?.(name, e.cause);
      responses.push(['error', err.toArgs(), callId]);
      opts.onCall?.(name, err.type);
    }
  }
  return {
    methodResponses: responses,
    ...(request.createdIds ? { createdIds: Object.fromEntries(createdIds) } : {}),
    sessionState: opts.sessionState,
  };
}

/** The account a method is asked about must be the user's (§3.6.2 accountNotFound); a
 *  missing accountId, or one that is no string, is invalidArguments (§3.9). */
export function checkAccount(accountId: unknown, ctx: MethodContext): void {
  if (typeof accountId !== 'string') throw new MethodError('invalidArguments', 'accountId is a string');
  if (accountId !== ctx.accountId) throw new MethodError('accountNotFound');
}
