// The JMAP server as server.ts builds it from [jmap]: the method registry with the core
// capability (Core/echo, Blob/copy, PushSubscription/*), the blob store with its expiry sweep,
// the PushHub the data types publish to, and the HTTP handler web/server.ts mounts. The Mail
// capability (RFC 8621) registers on `registry`, publishes on `hub` and adds blob resolvers to
// `blobs` (docs/jmap.md).

import type { JmapConfig } from '../config/jmap.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { Mailboxes } from '../store/mailboxes.ts';
import type { JmapAuthDeps } from './auth.ts';
import { type BlobStore, FileBlobStore } from './blob-store.ts';
import { CORE_CAPABILITY, type CoreLimits, MethodRegistry } from './core/registry.ts';
import { JmapHttp } from './http.ts';
import { registerCoreMethods } from './methods/core.ts';
import { registerEmailMethods } from './methods/email.ts';
import { registerMailboxMethods } from './methods/mailbox.ts';
import { type ObjectsDeps, registerObjects } from './methods/objects.ts';
import { PushHub } from './push.ts';
import { PushSubscriptions } from './push-subscription.ts';
import { coreCapability } from './session.ts';

export interface JmapService {
  readonly registry: MethodRegistry;
  readonly hub: PushHub;
  readonly blobs: BlobStore;
  readonly http: JmapHttp;
  /** The PushSubscriptions (a cluster gives them their peers: push-peers.ts). */
  readonly subscriptions: PushSubscriptions;
  /** Resolves once the kept PushSubscriptions listen again (push-subscription.ts load). */
  readonly ready: Promise<void>;
  close(): void;
}

export function limitsOf(c: JmapConfig): CoreLimits {
  return {
    maxSizeUpload: c.max_size_upload,
    maxConcurrentUpload: c.max_concurrent_upload,
    maxSizeRequest: c.max_size_request,
    maxConcurrentRequests: c.max_concurrent_requests,
    maxCallsInRequest: c.max_calls_in_request,
    maxObjectsInGet: c.max_objects_in_get,
    maxObjectsInSet: c.max_objects_in_set,
  };
}

export function createJmap(opts: {
  config: JmapConfig;
  /** Where the uploads go ({stateDir}/jmap-blobs/): [storage] state, or [cluster] shared_dir on
   *  a cluster, so an upload on one node is read on another (stores.ts sharedRoot). */
  stateDir: string;
  hostname: string;
  auth: JmapAuthDeps;
  log: Logger;
  /** The mailboxes (the Mail capability); without it only the core capability. */
  store?: Mailboxes;
  /** Identity, EmailSubmission, VacationResponse (RFC 8621 §6-§8; methods/objects.ts). */
  objects?: Omit<ObjectsDeps, 'hub'>;
}): JmapService {
  const limits = limitsOf(opts.config);
  const registry = new MethodRegistry().capability(CORE_CAPABILITY, coreCapability(limits));
  const hub = new PushHub();
  const blobs = new FileBlobStore(opts.stateDir);
  registerCoreMethods(registry, blobs);
  if (opts.store)
    registerMailboxMethods(registry, { store: opts.store, hub, maxSizeAttachmentsPerEmail: limits.maxSizeUpload });
  if (opts.store) registerEmailMethods(registry, { mailboxes: opts.store, blobs, hostname: opts.hostname });
  const subscriptions = new PushSubscriptions({
    hub,
    patterns: opts.config.push_url_patterns,
    log: opts.log,
    store: opts.objects?.state ?? null,
  });
  subscriptions.register(registry);
  const unfollow = opts.objects ? registerObjects(registry, { ...opts.objects, hub }) : () => {};
  const http = new JmapHttp({
    registry,
    limits,
    auth: opts.auth,
    blobs,
    hub,
    log: opts.log,
    baseUrl: opts.config.base_url,
    hostname: opts.hostname,
  });
  const sweep = setInterval(() => {
    blobs.sweep().catch((e: unknown) => opts.log.warn({ err: String(e) }, 'jmap: blob sweep failed'));
    subscriptions.sweep().catch((e: unknown) => opts.log.warn({ err: String(e) }, 'jmap: push sweep failed'));
  }, LIMITS.jmap.blobSweepMs);
  sweep.unref();
  return {
    registry,
    hub,
    blobs,
    http,
    subscriptions,
    ready: subscriptions.load(),
    close() {
      clearInterval(sweep);
      unfollow();
      subscriptions.close();
    },
  };
}
