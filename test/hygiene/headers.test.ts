// Removing Authentication-Results fields that claim our authserv-id (RFC 8601 §5).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authservIdOf, withoutOurAuthResults } from '../../src/hygiene/headers.ts';

const crlf = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'));

test('only the fields with our authserv-id go, folded lines with them, the rest byte for byte', () => {
  const block = crlf(
    'Received: from a\n\tby b\nAuthentication-Results: MX.Example.ORG;\n\tspf=pass smtp.mailfrom=x@evil.test\n' +
      'Authentication-Results: other.example; dkim=pass\nAuthentication-Results: (comment) mx.example.org; dmarc=pass\n' +
      'Subject: hi\n',
  );
  const out = withoutOurAuthResults(block, 'mx.example.org');
  assert.equal(
    out?.toString(),
    'Received: from a\r\n\tby b\r\nAuthentication-Results: other.example; dkim=pass\r\nSubject: hi\r\n',
  );
  assert.equal(
    withoutOurAuthResults(crlf('Subject: x\nAuthentication-Results: other; none\n'), 'mx.example.org'),
    null,
  );
});

test('authserv-id: the first token, comments and quotes skipped', () => {
  assert.equal(authservIdOf(' mx.example.org; spf=pass'), 'mx.example.org');
  assert.equal(authservIdOf(' (a (nested) comment) MX.example.org 1; none'), 'mx.example.org');
  assert.equal(authservIdOf(' "mx.example.org"; none'), 'mx.example.org');
  assert.equal(authservIdOf(''), '');
});
