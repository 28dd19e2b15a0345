// [jmap]: the JMAP server (RFC 8620, docs/jmap.md, src/jmap/) on the [http] listeners.

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';
import { duration, positiveInt, size } from './fields.ts';

const J = LIMITS.jmap;

/** A push URL pattern: an https:// (or http://) URL where `*` stands for any characters. */
const pushPattern = z
  .string()
  .max(500)
  .refine((s) => /^https?:\/\/[^\s]+$/.test(s), { message: 'not a URL pattern (e.g. "https://push.example.com/*")' });

export const jmapSection = z
  .strictObject({
    /** Serve JMAP (/.well-known/jmap, /jmap/...) on the [http] listeners. */
    enabled: z.boolean().default(true),
    /** The core capability's limits (RFC 8620 §2), as the session resource announces them. */
    max_size_upload: size.default(J.defaultMaxSizeUpload),
    max_concurrent_upload: positiveInt.max(64).default(J.defaultMaxConcurrentUpload),
    max_size_request: size.default(J.defaultMaxSizeRequest),
    max_concurrent_requests: positiveInt.max(64).default(J.defaultMaxConcurrentRequests),
    max_calls_in_request: positiveInt.max(1000).default(J.defaultMaxCallsInRequest),
    max_objects_in_get: positiveInt.max(10_000).default(J.defaultMaxObjectsInGet),
    max_objects_in_set: positiveInt.max(10_000).default(J.defaultMaxObjectsInSet),
    /** The base URL clients are told to use (apiUrl, downloadUrl ... of the session), e.g.
     *  "https://mail.example.com". Empty (the default): https://{hostname}, or the Host of the
     *  request when it came from this machine over plain HTTP (tests, a local proxy). */
    base_url: z
      .string()
      .regex(/^(?:https?:\/\/[A-Za-z0-9.:[\]-]+)?$/, 'not a base URL (e.g. "https://mail.example.com")')
      .default(''),
    /** Where PushSubscription callbacks may go (RFC 8620 §7.2): URLs matching one of these
     *  patterns (`*` = any characters). Empty (the default): PushSubscription/set create is
     *  refused with forbidden, and the server never calls out. */
    push_url_patterns: z.array(pushPattern).max(100).default([]),
    /** How far ahead an EmailSubmission may be delayed (HOLDFOR/HOLDUNTIL, RFC 8621 §7 and
     *  RFC 4865; the account's maxDelayedSend in seconds). "0s" turns delayed send off. */
    max_delayed_send: duration
      .default(J.defaultMaxDelayedSendMs)
      .refine((n) => n <= J.maxMaxDelayedSendMs, { message: 'at most 366 days' }),
  })
  .prefault({});

export type JmapConfig = z.infer<typeof jmapSection>;
