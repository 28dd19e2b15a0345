// The methods of the core capability that need no data type: Core/echo (RFC 8620 §4.1) and
// Blob/copy (§6.3). PushSubscription/* are in push-subscription.ts.

import { z } from 'zod';
import type { BlobStore } from '../blob-store.ts';
import { parseArgs } from '../core/args.ts';
import { MethodError, setError } from '../core/errors.ts';
import { CORE_CAPABILITY, type MethodRegistry } from '../core/registry.ts';

const blobCopyArgs = z.object({
  fromAccountId: z.string(),
  accountId: z.string(),
  blobIds: z.array(z.string().max(256)),
});

export function registerCoreMethods(registry: MethodRegistry, blobs: BlobStore): void {
  // §4.1: the arguments back, as they are.
  registry.method(CORE_CAPABILITY, 'Core/echo', (args) => args);

  // §6.3: each user has one account, so the only copy is within it: a blob the account can
  // open is copied as itself (blob ids are content-addressed); an upload is kept from expiry.
  registry.method(CORE_CAPABILITY, 'Blob/copy', async (args, ctx) => {
    const a = parseArgs(blobCopyArgs, args);
    if (a.fromAccountId !== ctx.accountId) throw new MethodError('fromAccountNotFound');
    if (a.accountId !== ctx.accountId) throw new MethodError('accountNotFound');
    if (a.blobIds.length > ctx.limits.maxObjectsInSet)
      throw new MethodError('requestTooLarge', `more than ${ctx.limits.maxObjectsInSet} blobs`);
    const copied: Record<string, string> = {};
    const notCopied: Record<string, unknown> = {};
    for (const id of a.blobIds) {
      if (await blobs.open(ctx.accountId, id, ctx.account)) copied[id] = id;
      else notCopied[id] = setError('notFound');
    }
    return {
      fromAccountId: a.fromAccountId,
      accountId: a.accountId,
      copied: Object.keys(copied).length > 0 ? copied : null,
      notCopied: Object.keys(notCopied).length > 0 ? notCopied : null,
    };
  });
}
