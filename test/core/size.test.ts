import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../../src/config/duration.ts';
import { formatSize, parseSize } from '../../src/core/size.ts';

test('parseSize understands binary units and refuses junk', () => {
  assert.equal(parseSize('50MB'), 50 * 1024 * 1024);
  assert.equal(parseSize('1 GB'), 1024 ** 3);
  assert.equal(parseSize('512k'), 512 * 1024);
  assert.equal(parseSize('1.5KB'), 1536);
  assert.equal(parseSize('100'), 100);
  assert.equal(parseSize(4096), 4096);
  for (const bad of ['', 'fifty', '10 parsecs', '-1', '1e9', -5, 1.5]) assert.equal(parseSize(bad), null, String(bad));
  assert.equal(formatSize(1024 ** 3), '1GB');
  assert.equal(formatSize(1536), '1.5KB');
  assert.equal(formatSize(100), '100B');
});

test('parseDuration', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration(1000), 1000);
  for (const bad of ['5', 'soon', '1y', -1]) assert.equal(parseDuration(bad), null, String(bad));
});
