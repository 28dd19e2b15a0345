// Signing stage (submission): DKIM-sign what leaves for other servers (RFC 6376 §5), by the
// domain of the From: author, over the header lines we add followed by the message (read once
// from the spool, no copy of it is made).

import { Readable } from 'node:stream';
import { parseAddress } from '../../core/address.ts';
import type { DkimSigner } from '../../hygiene/sign.ts';
import type { SpooledMessage } from '../../store/types.ts';
import { addressesIn, type HeaderField } from '../submission.ts';

/** The domain to sign for, or null: nothing remote, or no From: address with a domain. */
export function signingDomain(fields: readonly HeaderField[], remoteCount: number): string | null {
  if (remoteCount === 0) return null;
  return parseAddress(addressesIn(fields, 'from')[0] ?? '')?.domain ?? null;
}

async function* concat(head: Buffer, msg: SpooledMessage): AsyncGenerator<Buffer> {
  yield head;
  yield* msg.open() as AsyncIterable<Buffer>;
}

/** The DKIM-Signature field(s) to put on top of the remote copy. */
export function sign(signer: DkimSigner, domain: string, added: string, msg: SpooledMessage): Promise<string> {
  return signer.sign(domain, Readable.from(concat(Buffer.from(added, 'utf8'), msg), { objectMode: false }));
}
