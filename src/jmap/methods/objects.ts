// Registers the JMAP types kept in JmapState ({state}/jmap.db): VacationResponse (RFC 8621 §8)
// Identity (§6), EmailSubmission (§7) and their capabilities (docs/jmap-submission.md).

import type { JmapState } from '../../jmapstate/types.ts';
import type { Mailboxes } from '../../store/mailboxes.ts';
import type { MethodRegistry } from '../core/registry.ts';
import type { PushHub } from '../push.ts';
import { Identities, registerIdentity, type SendAsDirectory, SUBMISSION_CAPABILITY } from './identity.ts';
import { registerSubmission } from './submission.ts';
import type { SendDeps } from './submission-send.ts';
import { registerVacation } from './vacation.ts';

export interface ObjectsDeps {
  readonly state: JmapState;
  readonly hub: PushHub;
  readonly directory: SendAsDirectory;
  readonly accounts: Mailboxes;
  readonly send: SendDeps;
}

export function registerObjects(registry: MethodRegistry, deps: ObjectsDeps): void {
  registerVacation(registry, deps);
  // RFC 8621 §1.3.2: {} in the session; the account's: no delayed send (undoStatus is "final"
  // at once), no SMTP extensions offered.
  registry.capability(SUBMISSION_CAPABILITY, {}, { maxDelayedSend: 0, submissionExtensions: {} });
  const identities = new Identities(deps.state, deps.directory);
  registerIdentity(registry, { identities, state: deps.state, hub: deps.hub });
  registerSubmission(registry, { ...deps, identities });
}
