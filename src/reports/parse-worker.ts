// The worker thread that parses received reports (reports/received.ts) off the server's event
// loop: inflating a gzip or zip attachment and parsing its XML or JSON are synchronous and take
// up to seconds for a large (or hostile) report, which an admin API request must not make the
// server wait for. One message in ({ id, kind, bytes }: one whole message), one out ({ id,
// reports, unreadable }); the parsers are the pure, bounded ones of dmarc-parse.ts and
// tlsrpt-parse.ts.

import { parentPort } from 'node:worker_threads';
import { bufferReader } from '../mime/reader.ts';
import { reportsInMessage } from './dmarc-parse.ts';
import { readReport, reportParts } from './tlsrpt-parse.ts';

export interface ParseRequest {
  readonly id: number;
  readonly kind: 'tls' | 'dmarc';
  readonly bytes: Uint8Array;
}

export interface ParseResponse {
  readonly id: number;
  readonly reports: unknown[];
  readonly unreadable: number;
}

async function parse(m: ParseRequest): Promise<ParseResponse> {
  const bytes = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
  try {
    if (m.kind === 'dmarc') {
      const found = await reportsInMessage(bufferReader(bytes), bytes.length);
      return { id: m.id, reports: found.reports, unreadable: found.errors.length };
    }
    const reports: unknown[] = [];
    let unreadable = 0;
    for (const part of await reportParts(bytes)) {
      const read = readReport(part);
      if (read.ok) reports.push(read.report);
      else unreadable++;
    }
    return { id: m.id, reports, unreadable };
  } catch {
    return { id: m.id, reports: [], unreadable: 1 };
  }
}

parentPort?.on('message', (m: ParseRequest) => {
  void parse(m).then((r) => parentPort?.postMessage(r));
});
