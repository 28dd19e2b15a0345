// A Maildir message file opened for reading, as a MessageBody (store/mailboxes.ts). The file
// handle stays valid whatever happens to the name afterwards (a flag rename, an expunge).

import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { MessageBody } from '../mailboxes.ts';

export function fileBody(fh: FileHandle, size: number): MessageBody {
  return {
    size,
    read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
    stream: (start, end) =>
      end <= start
        ? Readable.from([])
        : fh.createReadStream({ start, end: end - 1, autoClose: false, emitClose: false }),
    close: () => fh.close().catch(() => {}),
  };
}
