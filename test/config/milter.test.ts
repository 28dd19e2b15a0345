// [[milter]] (src/config/milter.ts): addresses in Postfix's and Sendmail's spellings, the
// defaults, and what is refused.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.ts';
import { parseMilterAddress } from '../../src/config/milter.ts';

const FILE = '/etc/arcline/arcline.toml';

test('milter addresses: inet host:port, [v6]:port, port@host, unix:/path', () => {
  assert.deepEqual(parseMilterAddress('inet:127.0.0.1:8891'), { kind: 'inet', host: '127.0.0.1', port: 8891 });
  assert.deepEqual(parseMilterAddress('inet:localhost:11332'), { kind: 'inet', host: 'localhost', port: 11332 });
  assert.deepEqual(parseMilterAddress('inet:[::1]:8891'), { kind: 'inet', host: '::1', port: 8891 });
  assert.deepEqual(parseMilterAddress('inet:8891@localhost'), { kind: 'inet', host: 'localhost', port: 8891 });
  assert.deepEqual(parseMilterAddress('inet6:8891@[::1]'), { kind: 'inet', host: '::1', port: 8891 });
  assert.deepEqual(parseMilterAddress('unix:/run/opendkim/opendkim.sock'), {
    kind: 'unix',
    path: '/run/opendkim/opendkim.sock',
  });
  for (const bad of ['inet:host', 'inet:0@host', 'inet:host:70000', 'unix:relative.sock', 'tcp:1.2.3.4:25', '']) {
    assert.equal(parseMilterAddress(bad), null, bad);
  }
});

test('[[milter]]: none by default; defaults of each entry; order kept', () => {
  assert.deepEqual(parseConfigText('', FILE).milter, []);
  const c = parseConfigText(
    '[[milter]]\nname = "a"\naddress = "inet:127.0.0.1:1"\n[[milter]]\nname = "b"\naddress = "unix:/s"\nservices = ["smtp"]\neom_timeout = "1m"\non_failure = "accept"\nmacros = { "{daemon_name}" = "MTA" }\n',
    FILE,
  );
  assert.deepEqual(
    c.milter.map((m) => m.name),
    ['a', 'b'],
  );
  const [a, b] = c.milter;
  assert.deepEqual(a, {
    name: 'a',
    address: { kind: 'inet', host: '127.0.0.1', port: 1 },
    services: ['smtp', 'submission'],
    connect_timeout: 30_000,
    command_timeout: 30_000,
    eom_timeout: 300_000,
    on_failure: 'tempfail',
    macros: {},
  });
  assert.equal(b?.eom_timeout, 60_000);
  assert.equal(b?.on_failure, 'accept');
  assert.deepEqual(b?.services, ['smtp']);
  assert.deepEqual(b?.macros, { '{daemon_name}': 'MTA' });
});

test('[[milter]]: bad entries stop start-up with the key', () => {
  const one = (extra: string) => `[[milter]]\nname = "a"\naddress = "inet:127.0.0.1:1"\n${extra}\n`;
  assert.throws(() => parseConfigText(one('on_failure = "ignore"'), FILE), /milter\.0\.on_failure/);
  assert.throws(() => parseConfigText(one('services = []'), FILE), /milter\.0\.services/);
  assert.throws(() => parseConfigText(one('command_timeout = "0s"'), FILE), /milter\.0\.command_timeout/);
  assert.throws(() => parseConfigText(one('macros = { "bad name" = "x" }'), FILE), /milter\.0\.macros/);
  assert.throws(() => parseConfigText(one('colour = "red"'), FILE), /colour: unknown key/);
  assert.throws(() => parseConfigText('[[milter]]\nname = "a"\naddress = "nowhere"\n', FILE), /not a milter address/);
  assert.throws(() => parseConfigText(one('') + one(''), FILE), /milter names must be unique/);
});
