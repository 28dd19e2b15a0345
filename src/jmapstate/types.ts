// The JMAP objects that live outside the mail store (docs/jmap-submission.md): Identity,
// EmailSubmission and VacationResponse of RFC 8621 §6-§8, each kept per account as a JSON
// object under its id, with a per-type state (a counter) and a change log that /changes folds
// (jmap/core/changes.ts foldChanges). The contract is pinned by test/jmapstate/contract.ts.

import type { AccountId } from '../core/ids.ts';

/** The types kept here. */
export type JmapStateType = 'Identity' | 'EmailSubmission' | 'VacationResponse';

export interface JmapStateChange {
  /** The state this change made (decimal; later changes have larger ones). */
  readonly state: string;
  readonly id: string;
  readonly kind: 'created' | 'updated' | 'destroyed';
}

/** A PushSubscription as kept (RFC 8620 §7.2, jmap/push-subscription.ts): it belongs to the
 *  user, not to a type's state, and has no change log. */
export interface StoredPushSubscription {
  readonly account: AccountId;
  readonly id: string;
  /** ms since epoch; an expired one is deleted by deleteExpiredPushSubscriptions. */
  readonly expires: number;
  /** The rest (deviceClientId, url, keys, verification state, types), as JSON. */
  readonly data: Record<string, unknown>;
}

/** A kept push subscription row (both stores keep `data` as JSON text) as the interface gives it. */
export function storedPushSubscription(r: {
  account: string;
  id: string;
  expires: number;
  data: string;
}): StoredPushSubscription {
  return {
    account: r.account as AccountId,
    id: r.id,
    expires: Number(r.expires),
    data: JSON.parse(r.data) as Record<string, unknown>,
  };
}

export interface JmapState {
  /** The type's current state string for the account ("0" before any change). */
  state(account: AccountId, type: JmapStateType): Promise<string>;
  /** One object, or null. */
  get(account: AccountId, type: JmapStateType, id: string): Promise<Record<string, unknown> | null>;
  /** Every object of the type, in creation order. */
  list(account: AccountId, type: JmapStateType): Promise<readonly Record<string, unknown>[]>;
  /** Creates or replaces an object (one change: created or updated); returns the new state. */
  put(account: AccountId, type: JmapStateType, id: string, data: Record<string, unknown>): Promise<string>;
  /** Destroys an object (a no-op when missing); returns the state. */
  destroy(account: AccountId, type: JmapStateType, id: string): Promise<string>;
  /** The changes after `since` in order, or null when `since` is not a state of this type
   *  (unknown or in the future). */
  changesSince(account: AccountId, type: JmapStateType, since: string): Promise<readonly JmapStateChange[] | null>;
  /** The push subscriptions kept: of one account (by id), or of every account (read at start). */
  pushSubscriptions(account?: AccountId): Promise<readonly StoredPushSubscription[]>;
  /** Creates or replaces one. */
  putPushSubscription(s: StoredPushSubscription): Promise<void>;
  deletePushSubscription(account: AccountId, id: string): Promise<void>;
  /** Deletes those expired at `now` (ms); returns them. */
  deleteExpiredPushSubscriptions(now: number): Promise<readonly { account: AccountId; id: string }[]>;
  /** Forgets everything of a deleted account (push subscriptions too). */
  deleteAccount(account: AccountId): Promise<void>;
  close(): void;
}
