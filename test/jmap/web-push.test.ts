// RFC 8291 push message encryption (src/jmap/web-push-encrypt.ts): the RFC's example byte for
// byte, and messages decrypted by an independent implementation (http_ece, the library of
// the web-push project).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encryptPush, parsePushKeys } from '../../src/jmap/web-push-encrypt.ts';
import { pushAgent } from '../harness/web-push.ts';

const b64 = (s: string) => Buffer.from(s, 'base64url');

test('RFC 8291 §5 example', () => {
  const keys = parsePushKeys({
    p256dh: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
    auth: 'BTBZMqHH6r4Tts7J_aSIgg',
  });
  assert.ok(keys);
  const body = encryptPush(Buffer.from('When I grow up, I want to be a watermelon'), keys, {
    privateKey: b64('yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw'),
    salt: b64('DGv6ra1nlYgDCS1FRnbzlw'),
  });
  assert.equal(
    body.toString('base64url'),
    'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
  );
});

test('decrypted by http_ece', async () => {
  const agent = pushAgent();
  const keys = parsePushKeys(agent.keys);
  assert.ok(keys);
  const message = Buffer.from(JSON.stringify({ '@type': 'StateChange', changed: { A1: { Email: '7' } } }));
  assert.deepEqual(await agent.decrypt(encryptPush(message, keys)), message);
});

test('bad keys are refused', () => {
  assert.equal(parsePushKeys({ p256dh: 'abc', auth: 'BTBZMqHH6r4Tts7J_aSIgg' }), null);
  assert.equal(parsePushKeys({ p256dh: `B${'A'.repeat(86)}`, auth: 'BTBZMqHH6r4Tts7J_aSIgg' }), null);
  assert.equal(parsePushKeys(null), null);
});
