// A stored message, opened, presented as a SpooledMessage so APPEND/COPY/MOVE/RENAME INBOX can
// hand it to Mailbox.append() without reading it into memory.

import type { MessageBody } from '../store/mailboxes.ts';
import type { SpooledMessage } from '../store/types.ts';

export function fileMessage(body: MessageBody, size: number): SpooledMessage {
  return {
    size,
    open: () => body.stream(0, size),
    dispose: () => body.close(),
  };
}
