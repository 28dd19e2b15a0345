// VacationResponse/get and /set (RFC 8621 §8): one object per account, id "singleton", kept in
// JmapState. It is the same vacation as Sieve's: delivery (queue/sieve-filter.ts) sends an
// enabled one within its dates through the Sieve vacation code (docs/jmap-submission.md).

import type { JmapState } from '../../jmapstate/types.ts';
import { DEFAULT_VACATION, readVacation, VACATION_ID, vacationSchema } from '../../jmapstate/vacation.ts';
import { SetFailure } from '../core/errors.ts';
import { getResponse, parseGet } from '../core/get.ts';
import { applyPatch } from '../core/pointer.ts';
import type { MethodRegistry } from '../core/registry.ts';
import { runSet } from '../core/set.ts';
import type { PushHub } from '../push.ts';

export const VACATION_CAPABILITY = 'urn:ietf:params:jmap:vacationresponse';

const PROPERTIES = ['id', 'isEnabled', 'fromDate', 'toDate', 'subject', 'textBody', 'htmlBody'] as const;

export function registerVacation(registry: MethodRegistry, deps: { state: JmapState; hub: PushHub }): void {
  const { state } = deps;
  registry.capability(VACATION_CAPABILITY, {});

  // §8.2: the standard /get; the one object always exists.
  registry.method(VACATION_CAPABILITY, 'VacationResponse/get', async (args, ctx) => {
    const req = parseGet(args, ctx, PROPERTIES);
    const v = await readVacation(state, ctx.account);
    const found = req.ids === null || req.ids.includes(VACATION_ID) ? [v] : [];
    return getResponse(req, ctx, await state.state(ctx.account, 'VacationResponse'), found);
  });

  // §8.3: only an update of "singleton"; create and destroy are forbidden (singleton).
  registry.method(VACATION_CAPABILITY, 'VacationResponse/set', async (args, ctx) => {
    const res = await runSet(args, ctx, {
      state: () => state.state(ctx.account, 'VacationResponse'),
      create: async () => {
        throw new SetFailure('singleton', 'there is only the VacationResponse "singleton"');
      },
      destroy: async () => {
        throw new SetFailure('singleton', 'the VacationResponse cannot be destroyed');
      },
      update: async (id, patch) => {
        if (id !== VACATION_ID) throw new SetFailure('notFound');
        if ('id' in patch) throw new SetFailure('invalidProperties', 'id is server-set', ['id']);
        const r = applyPatch(await readVacation(state, ctx.account), patch);
        if (!r.ok) throw new SetFailure('invalidPatch', r.description);
        // A property a patch removes (null) is back at its default.
        const parsed = vacationSchema.safeParse({ ...DEFAULT_VACATION, ...r.value });
        if (!parsed.success) {
          const props = [...new Set(parsed.error.issues.map((i) => String(i.path[0] ?? '')))];
          throw new SetFailure('invalidProperties', parsed.error.issues[0]?.message, props);
        }
        await state.put(ctx.account, 'VacationResponse', VACATION_ID, parsed.data);
        return null;
      },
    });
    if (res.oldState !== res.newState) deps.hub.publish(ctx.account, { VacationResponse: String(res.newState) });
    return res;
  });
}
