// Debian's python3-dkim (dkimpy) as an independent ARC implementation (RFC 8617) for the tests:
// arcSign adds an ARC set the way another intermediary would, arcVerify validates a chain with
// the keys the test hands it (no DNS query leaves the process: dnsfunc answers from a map).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';

const SIGN = `
import sys, dkim
sel, dom, key, srv = sys.argv[1:5]
msg = sys.stdin.buffer.read()
fields = dkim.arc_sign(msg, sel.encode(), dom.encode(), key.encode(), srv.encode())
if not fields:
    sys.exit('arc_sign made no set')
sys.stdout.buffer.write(b''.join(fields) + msg)
`;

const VERIFY = `
import sys, json, dkim
keys = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    n = (name.decode() if isinstance(name, bytes) else name).rstrip('.').lower()
    v = keys.get(n)
    return v.encode() if v is not None else None
msg = sys.stdin.buffer.read()
cv, results, comment = dkim.arc_verify(msg, dnsfunc=dnsfunc)
print(json.dumps({'cv': cv.decode() if isinstance(cv, bytes) else str(cv), 'comment': comment, 'instances': len(results)}, default=str))
`;

/** The message with an ARC set of dkimpy's on top, made by `domain` (it seals the
 *  Authentication-Results of `authservId` the message must carry). `pem`: an RSA key. */
export function arcSign(message: Buffer, o: { selector: string; domain: string; pem: string; authservId: string }) {
  const r = spawnSync(PYTHON, ['-c', SIGN, o.selector, o.domain, o.pem, o.authservId], { input: message });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

/** dkimpy's arc_verify: cv is pass, fail or none; `keys` maps "{selector}._domainkey.{domain}"
 *  to its TXT record. */
export function arcVerify(
  message: Buffer,
  keys: Record<string, string>,
): { cv: string; comment: string; instances: number } {
  const r = spawnSync(PYTHON, ['-c', VERIFY, JSON.stringify(keys)], { input: message });
  assert.equal(r.status, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString());
}
