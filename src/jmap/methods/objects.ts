// Registers the JMAP types kept in JmapState ({state}/jmap.db): VacationResponse (RFC 8621 §8)
// and their capabilities (docs/jmap-submission.md).

import type { JmapState } from '../../jmapstate/types.ts';
import type { MethodRegistry } from '../core/registry.ts';
import type { PushHub } from '../push.ts';
import { registerVacation } from './vacation.ts';

export interface ObjectsDeps {
  readonly state: JmapState;
  readonly hub: PushHub;
}

export function registerObjects(registry: MethodRegistry, deps: ObjectsDeps): void {
  registerVacation(registry, deps);
}
