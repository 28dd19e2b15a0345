// [arc]: ARC (RFC 8617) on mail we forward (docs/delivery.md "ARC", hygiene/arc-seal.ts).
// Inbound validation is always on (it is part of the authentication checks, arc= in our
// Authentication-Results); this section only decides whether forwarded copies are sealed.

import { z } from 'zod';

export const arcSection = z
  .strictObject({
    /** Seal the copies of inbound mail we forward (aliases pointing outside, Sieve redirect)
     *  with an ARC set signed by the forwarding domain's RSA DKIM key (else our host
     *  name's); a copy for which no RSA key exists leaves unsealed. */
    seal: z.boolean().default(true),
  })
  .prefault({});
