// The standard /changes (RFC 8620 §5.2) of a type kept in JmapState: its change log folded.

import type { JmapState, JmapStateType } from '../../jmapstate/types.ts';
import { changesResponse, foldChanges, parseChanges } from '../core/changes.ts';
import { MethodError } from '../core/errors.ts';
import type { MethodContext } from '../core/registry.ts';

export async function objectChanges(
  state: JmapState,
  type: JmapStateType,
  args: Record<string, unknown>,
  ctx: MethodContext,
): Promise<Record<string, unknown>> {
  const a = parseChanges(args, ctx);
  const entries = await state.changesSince(ctx.account, type, a.sinceState);
  if (entries === null) throw new MethodError('cannotCalculateChanges', `unknown ${type} state ${a.sinceState}`);
  const current = await state.state(ctx.account, type);
  return changesResponse(ctx, a.sinceState, foldChanges(entries, current, a.maxChanges));
}
