// The start-up rules of a cluster node (issue #18, docs/cluster.md "Setting up"): a [database]
// url needs [cluster] shared_dir (the queue files and JMAP uploads every node reads), inbound
// SMTP threads stay off on a cluster ("auto" gives 0, a count is refused with a clear line),
// and nothing changes without a url.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sharedPaths } from '../../src/config/cluster.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { isArclineError } from '../../src/core/errors.ts';
import { clusterSmtpThreads } from '../../src/server-cluster.ts';
import { StartupError } from '../../src/server-web.ts';
import { sharedRoot } from '../../src/stores.ts';

const URL_ = '[database]\nurl = "postgres://arcline@127.0.0.1/arcline"\n';
const cfg = (text: string) => parseConfigText(`[storage]\nstate = "/var/lib/arcline"\n${text}`, '/etc/arcline/a.toml');

test('[cluster] shared_dir: required with a url, holding the queue and the uploads', () => {
  assert.equal(sharedPaths(cfg('')), null, 'one machine: no shared files');
  assert.equal(sharedRoot(cfg('')), '/var/lib/arcline');
  assert.throws(
    () => sharedPaths(cfg(URL_)),
    (e) => isArclineError(e, 'CONFIG') && /\[cluster\] shared_dir: required/.test(e.message),
  );
  const c = cfg(`${URL_}[cluster]\nshared_dir = "/srv/arcline"\n`);
  assert.deepEqual(sharedPaths(c), {
    queueSpool: '/srv/arcline/queue',
    jmapBlobs: '/srv/arcline/jmap-blobs',
  });
  assert.equal(sharedRoot(c), '/srv/arcline');
});

test('[smtp] threads on a cluster: "auto" runs inbound SMTP in the main thread, a count is refused', () => {
  assert.equal(clusterSmtpThreads(cfg('[smtp]\nthreads = 4\n'), 4), 4, 'no url: as configured');
  assert.equal(clusterSmtpThreads(cfg(`${URL_}[smtp]\nthreads = "auto"\n`), 6), 0);
  assert.equal(clusterSmtpThreads(cfg(`${URL_}[smtp]\nthreads = 0\n`), 0), 0);
  assert.throws(
    () => clusterSmtpThreads(cfg(`${URL_}[smtp]\nthreads = 2\n`), 2),
    (e) => e instanceof StartupError && /threads = 0 or "auto"/.test(e.message),
  );
});
