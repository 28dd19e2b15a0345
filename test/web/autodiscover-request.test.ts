// The autodiscover request reader (src/web/autodiscover-request.ts): a table of tricky bodies,
// and properties: it never throws, never accepts a body with a markup declaration, and stays
// linear on large hostile input.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeText, parseAutodiscoverRequest } from '../../src/web/autodiscover-request.ts';

const parse = (s: string) => parseAutodiscoverRequest(Buffer.from(s));
const NS = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006';

describe('parseAutodiscoverRequest', () => {
  test('a table of bodies', () => {
    const ok = (s: string, address: string) => assert.deepEqual(parse(s), { kind: 'ok', emailAddress: address }, s);
    const bad = (s: string, reason: RegExp) => {
      const r = parse(s);
      assert.equal(r.kind, 'invalid', s);
      if (r.kind === 'invalid') assert.match(r.reason, reason, s);
    };
    ok(
      `<Autodiscover xmlns="${NS}"><Request><EMailAddress>a@b.test</EMailAddress></Request></Autodiscover>`,
      'a@b.test',
    );
    ok(
      `\ufeff<?xml version="1.0"?><!-- hi --><Autodiscover><Request><EMailAddress> a@b.test </EMailAddress></Request></Autodiscover>`,
      'a@b.test',
    );
    ok(
      '<a:Autodiscover xmlns:a="x"><a:Request><a:EMailAddress>a&amp;b@c.test</a:EMailAddress></a:Request></a:Autodiscover>',
      'a&b@c.test',
    );
    ok(
      '<Autodiscover><Request><EMailAddress/><EMailAddress>x@y.test</EMailAddress></Request></Autodiscover>',
      'x@y.test',
    );
    ok('<Autodiscover><EMailAddress>&#x61;&#98;@y.test</EMailAddress></Autodiscover>', 'ab@y.test');
    bad('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Autodiscover/>', /declarations/);
    bad('<?xml version="1.0"?><!doctype x><Autodiscover/>', /declarations/);
    bad('<Autodiscover><![CDATA[<EMailAddress>a@b.test</EMailAddress>]]></Autodiscover>', /declarations/);
    bad('<Autodiscover><EMailAddress>a@b.test</EMailAddress><!ENTITY x "y"></Autodiscover>', /declarations/);
    bad('<Autodiscover><EMailAddress>&e;@b.test</EMailAddress></Autodiscover>', /entity/);
    bad('<Autodiscover><EMailAddress>&#0;@b.test</EMailAddress></Autodiscover>', /entity/);
    bad('<Autodiscover><EMailAddress>&#xD800;@b.test</EMailAddress></Autodiscover>', /entity/);
    bad('<Other><EMailAddress>a@b.test</EMailAddress></Other>', /not an Autodiscover/);
    bad('<Autodiscover><Request></Request></Autodiscover>', /no EMailAddress/);
    bad('<Autodiscover><EMailAddress>a@b.test', /unterminated/);
    bad('<Autodiscover', /unterminated/);
    bad('<!-- never closed', /unterminated/);
    bad('', /no XML element/);
  });

  test('decodeText: predefined and character references only', () => {
    assert.equal(decodeText('&lt;&gt;&amp;&quot;&apos;'), `<>&"'`);
    assert.equal(decodeText('&#x1F600;'), '\u{1F600}');
    assert.equal(decodeText('&#65'), null);
    assert.equal(decodeText('&#x;'), null);
    assert.equal(decodeText('&#1a;'), null);
    assert.equal(decodeText('&verylongentityname;'), null);
  });

  test('never throws; a body with a declaration is never accepted', () => {
    const piece = fc.constantFrom(
      '<',
      '>',
      '/',
      '!',
      '?',
      '-',
      '&',
      ';',
      '#',
      'x',
      ' ',
      'Autodiscover',
      'EMailAddress',
      '<!--',
      '-->',
      '<!DOCTYPE',
      'a@b.test',
      ':',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (parts) => {
        const s = parts.join('');
        const r = parse(s);
        if (r.kind === 'ok' && /<!(?!--)/.test(s.slice(0, s.indexOf('EMailAddress')))) {
          throw new Error(`accepted a declaration before the address: ${s}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('linear on 64 KiB of hostile input', () => {
    for (const s of [
      '<'.repeat(65536),
      '<Autodiscover>'.repeat(4000),
      `<Autodiscover><EMailAddress>${'&'.repeat(60000)}`,
      '<!--'.repeat(16000),
    ]) {
      const start = performance.now();
      parse(s);
      assert.ok(performance.now() - start < 200, `${s.slice(0, 20)}: ${performance.now() - start} ms`);
    }
  });
});
