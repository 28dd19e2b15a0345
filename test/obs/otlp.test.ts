// Issue #14: log shipping to an OpenTelemetry logs endpoint ([log] otlp, OTLP/HTTP JSON),
// tested against a local collector on 127.0.0.1 that checks the request's shape, refuses the
// first request with 503 (the batch is kept and sent again) and then takes them.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { closeLogShipping, createLogger } from '../../src/core/log.ts';
import { waitUntil } from '../harness/submit.ts';

interface Attribute {
  readonly key: string;
  readonly value: Record<string, unknown>;
}
interface LogRecord {
  readonly timeUnixNano: string;
  readonly severityNumber: number;
  readonly severityText: string;
  readonly body: { readonly stringValue: string };
  readonly attributes: readonly Attribute[];
}

const bodyOf = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
  });

test('OTLP/HTTP JSON: one LogRecord per line, a 503 retried, fields as typed attributes', async () => {
  const records: LogRecord[] = [];
  const resources: unknown[] = [];
  let requests = 0;
  const collector = createServer(async (req, res) => {
    const body = await bodyOf(req);
    requests++;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/v1/logs');
    assert.equal(req.headers['content-type'], 'application/json');
    if (requests === 1) {
      res.writeHead(503).end();
      return;
    }
    const doc = JSON.parse(body) as {
      resourceLogs: { resource: unknown; scopeLogs: { scope: { name: string }; logRecords: LogRecord[] }[] }[];
    };
    for (const rl of doc.resourceLogs) {
      resources.push(rl.resource);
      for (const sl of rl.scopeLogs) records.push(...sl.logRecords);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const port = (collector.address() as AddressInfo).port;
  const log = createLogger({
    level: 'info',
    format: 'json',
    destination: new Writable({ write: (_c, _e, cb) => cb() }),
    otlp: { url: `http://127.0.0.1:${port}/v1/logs`, hostname: 'mx.test.example', maxLines: 100 },
  });
  after(async () => {
    await closeLogShipping(log);
    collector.closeAllConnections();
    await new Promise((r) => collector.close(r));
  });
  log.info({ access: 'http', status: 404, duration_ms: 1.5, aborted: false, path: '/x' }, 'http access');
  log.error({ err: 'boom' }, 'something failed');
  await waitUntil('the records, after a refused first request', async () => records.length >= 2, 15_000);
  assert.ok(requests >= 2);
  const access = records.find((r) => r.body.stringValue === 'http access');
  assert.ok(access);
  assert.deepEqual([access.severityNumber, access.severityText], [9, 'INFO']);
  assert.match(access.timeUnixNano, /^\d{19}$/);
  const attr = (k: string) => access.attributes.find((a) => a.key === k)?.value;
  assert.deepEqual(attr('status'), { intValue: '404' });
  assert.deepEqual(attr('duration_ms'), { doubleValue: 1.5 });
  assert.deepEqual(attr('aborted'), { boolValue: false });
  assert.deepEqual(attr('path'), { stringValue: '/x' });
  assert.deepEqual(attr('access'), { stringValue: 'http' });
  assert.equal(attr('msg'), undefined);
  assert.equal(records.find((r) => r.body.stringValue === 'something failed')?.severityNumber, 17);
  assert.deepEqual(resources[0], {
    attributes: [
      { key: 'service.name', value: { stringValue: 'arcline' } },
      { key: 'host.name', value: { stringValue: 'mx.test.example' } },
    ],
  });
});
