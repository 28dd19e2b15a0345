// A stored message, opened, presented as a SpooledMessage so APPEND/COPY/MOVE/RENAME INBOX can
// hand it to MaildirMailbox.append() without reading it into memory.

import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { SpooledMessage } from '../store/types.ts';

export function fileMessage(fh: FileHandle, size: number): SpooledMessage {
  return {
    size,
    open: () =>
      size === 0
        ? Readable.from([])
        : fh.createReadStream({ start: 0, end: size - 1, autoClose: false, emitClose: false }),
    dispose: () => fh.close().catch(() => {}),
  };
}
