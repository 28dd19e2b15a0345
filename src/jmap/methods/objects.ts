// Registers the JMAP types kept in JmapState ({state}/jmap.db): VacationResponse (RFC 8621 §8)
// Identity (§6), EmailSubmission (§7) and their capabilities (docs/jmap-submission.md).

import type { Logger } from '../../core/log.ts';
import type { JmapState } from '../../jmapstate/types.ts';
import type { Mailboxes } from '../../store/mailboxes.ts';
import type { MethodRegistry } from '../core/registry.ts';
import type { PushHub } from '../push.ts';
import { Identities, registerIdentity, type SendAsDirectory, SUBMISSION_CAPABILITY } from './identity.ts';
import { registerSubmission } from './submission.ts';
import type { SendDeps } from './submission-send.ts';
import { type SubmissionQueue, SubmissionTracker } from './submission-track.ts';
import { registerVacation } from './vacation.ts';

export interface ObjectsDeps {
  readonly state: JmapState;
  readonly hub: PushHub;
  readonly directory: SendAsDirectory;
  readonly accounts: Mailboxes;
  readonly send: SendDeps;
  /** The outbound queue: its events (deliveryStatus) and the cancel of delayed sends. */
  readonly queue: SubmissionQueue;
  /** [delivery] relay is set (a 250 there is "unknown", not "yes"). */
  readonly relayed: boolean;
  /** [jmap] max_delayed_send (ms). */
  readonly maxDelayedSendMs: number;
  readonly log: Logger;
}

/** Registers the types; returns the function that stops following the queue. */
export function registerObjects(registry: MethodRegistry, deps: ObjectsDeps): () => void {
  registerVacation(registry, deps);
  // RFC 8621 §1.3.2: {} in the session; the account's: maxDelayedSend in seconds, and the
  // FUTURERELEASE extension (RFC 4865 §3: its max-future-release-interval) when it is on.
  const maxDelayedSend = Math.floor(deps.maxDelayedSendMs / 1000);
  registry.capability(
    SUBMISSION_CAPABILITY,
    {},
    {
      maxDelayedSend,
      submissionExtensions: {
        // RFC 8621 §7: the SMTP extensions whose parameters the envelope may carry; DSN's are
        // honoured (submission-send.ts), as on port 587.
        DSN: [],
        ...(maxDelayedSend > 0 ? { FUTURERELEASE: [String(maxDelayedSend)] } : {}),
      },
    },
  );
  const identities = new Identities(deps.state, deps.directory);
  registerIdentity(registry, { identities, state: deps.state, hub: deps.hub });
  const tracker = new SubmissionTracker(deps);
  registerSubmission(registry, { ...deps, identities, tracker });
  return tracker.follow(deps.queue);
}
