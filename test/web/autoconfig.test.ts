// Client autoconfiguration over real HTTP and HTTPS against the real server (src/web/autoconfig.ts):
// Thunderbird's config-v1.1.xml, Outlook's autodiscover (POST and GET) and the Apple profile,
// every answer checked with a real XML parser (fast-xml-parser), the profile also with Python's
// plistlib; the ports are the listeners' bound ones. Refusals: XXE (DOCTYPE/ENTITY) 400,
// oversized bodies 413, unknown domains 404, bad addresses 400, wrong methods 405.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { fetchLocal, type Reply } from './client.ts';

let t: TestServer;
let http: number;
let https: number;

before(async () => {
  t = await startTestServer({
    submission: true,
    extra: '[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = ["127.0.0.1:0"]\n',
  });
  http = t.server.http[0]?.port ?? 0;
  https = t.server.http[1]?.port ?? 0;
});

after(() => t.stop());

const parser = new XMLParser({
  ignoreAttributes: false,
  parseTagValue: false,
  isArray: (name) => ['incomingServer', 'outgoingServer', 'Protocol'].includes(name),
});

interface TbServer {
  '@_type': string;
  hostname: string;
  port: string;
  socketType: string;
  username: string;
  authentication: string;
}
interface TbDoc {
  clientConfig: {
    '@_version': string;
    emailProvider: { '@_id': string; domain: string; incomingServer: TbServer[]; outgoingServer: TbServer[] };
  };
}
interface AdProtocol {
  Type: string;
  Server: string;
  Port: string;
  LoginName: string;
  Encryption: string;
  SPA: string;
}
interface AdDoc {
  Autodiscover: {
    '@_xmlns': string;
    Response: { '@_xmlns': string; Account: { AccountType: string; Action: string; Protocol: AdProtocol[] } };
  };
}
interface MailPayload {
  [key: string]: string | number | boolean;
  PayloadUUID: string;
}
interface Profile {
  PayloadType: string;
  PayloadVersion: number;
  PayloadUUID: string;
  PayloadIdentifier: string;
  PayloadContent: MailPayload[];
}

function parseXml<T>(body: string): T {
  assert.equal(XMLValidator.validate(body), true, `well-formed XML:\n${body}`);
  return parser.parse(body) as T;
}

const get = (path: string, host: string, secure = false) => fetchLocal(secure ? https : http, { path, host, secure });

describe('Thunderbird autoconfig (config-v1.1.xml)', () => {
  const expectConfig = (r: Reply, domain: string) => {
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^application\/xml/);
    const doc = parseXml<TbDoc>(r.body).clientConfig;
    assert.equal(doc['@_version'], '1.1');
    const p = doc.emailProvider;
    assert.equal(p['@_id'], domain);
    assert.equal(p.domain, domain);
    const servers = (list: TbServer[]) =>
      list.map((s) => [s['@_type'], s.hostname, Number(s.port), s.socketType, s.username, s.authentication]);
    assert.deepEqual(servers(p.incomingServer), [
      ['imap', 'mx.test.example', t.imapsPort, 'SSL', '%EMAILADDRESS%', 'password-cleartext'],
      ['imap', 'mx.test.example', t.imapPort, 'STARTTLS', '%EMAILADDRESS%', 'password-cleartext'],
    ]);
    assert.deepEqual(servers(p.outgoingServer), [
      ['smtp', 'mx.test.example', t.submissionTlsPort, 'SSL', '%EMAILADDRESS%', 'password-cleartext'],
      ['smtp', 'mx.test.example', t.submissionPort, 'STARTTLS', '%EMAILADDRESS%', 'password-cleartext'],
    ]);
  };

  test('with ?emailaddress= on any host, over HTTP and HTTPS', async () => {
    const path = '/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=Alice%40Example.TEST';
    expectConfig(await get(path, 'mx.test.example'), 'example.test');
    expectConfig(await get(path, 'example.test', true), 'example.test');
    expectConfig(
      await get('/mail/config-v1.1.xml?emailaddress=bob%40example.test', 'autoconfig.example.test'),
      'example.test',
    );
  });

  test('without emailaddress the Host names the domain', async () => {
    expectConfig(await get('/mail/config-v1.1.xml', 'autoconfig.example.test'), 'example.test');
    expectConfig(await get('/mail/config-v1.1.xml', 'autoconfig.example.test:8080', true), 'example.test');
    expectConfig(await get('/.well-known/autoconfig/mail/config-v1.1.xml', 'example.test'), 'example.test');
    // The host name alone is no local domain.
    assert.equal((await get('/.well-known/autoconfig/mail/config-v1.1.xml', 'mx.test.example')).status, 404);
  });

  test('refusals: unknown domain 404, bad address 400, wrong host 404, POST 405', async () => {
    const wk = '/.well-known/autoconfig/mail/config-v1.1.xml';
    assert.equal((await get(`${wk}?emailaddress=a%40other.test`, 'example.test')).status, 404);
    assert.equal((await get('/mail/config-v1.1.xml', 'autoconfig.other.test')).status, 404);
    assert.equal((await get(`${wk}?emailaddress=not-an-address`, 'example.test')).status, 400);
    assert.equal((await get('/mail/config-v1.1.xml', 'mx.test.example')).status, 404);
    const post = await fetchLocal(http, { method: 'POST', path: wk, host: 'example.test', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });
});

const AUTODISCOVER_REQUEST = (address: string) => `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>${address}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`;

describe('Outlook autodiscover (POX)', () => {
  const post = (body: string | Buffer, path = '/autodiscover/autodiscover.xml', secure = true) =>
    fetchLocal(secure ? https : http, {
      method: 'POST',
      path,
      host: 'autodiscover.example.test',
      secure,
      body,
      headers: { 'content-type': 'text/xml' },
    });

  const expectResponse = (r: Reply, address: string) => {
    assert.equal(r.status, 200, r.body);
    const doc = parseXml<AdDoc>(r.body).Autodiscover;
    assert.equal(doc['@_xmlns'], 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006');
    assert.equal(
      doc.Response['@_xmlns'],
      'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a',
    );
    const account = doc.Response.Account;
    assert.equal(account.AccountType, 'email');
    assert.equal(account.Action, 'settings');
    assert.deepEqual(
      account.Protocol.map((p) => [p.Type, p.Server, Number(p.Port), p.LoginName, p.Encryption, p.SPA]),
      [
        ['IMAP', 'mx.test.example', t.imapsPort, address, 'SSL', 'off'],
        ['SMTP', 'mx.test.example', t.submissionTlsPort, address, 'SSL', 'off'],
      ],
    );
  };

  test('POST with the request XML, at either spelling of the path; GET with ?emailaddress=', async () => {
    expectResponse(await post(AUTODISCOVER_REQUEST('Alice@example.test')), 'alice@example.test');
    expectResponse(
      await post(AUTODISCOVER_REQUEST('bob@example.test'), '/Autodiscover/Autodiscover.xml', false),
      'bob@example.test',
    );
    // Entities the XML spec predefines are fine.
    expectResponse(await post(AUTODISCOVER_REQUEST('o&#39;hara@example.test')), "o'hara@example.test");
    expectResponse(
      await get('/autodiscover/autodiscover.xml?emailaddress=carol%40example.test', 'example.test', true),
      'carol@example.test',
    );
  });

  test('XXE and entity expansion are refused with 400, never resolved', async () => {
    const xxe = `<?xml version="1.0"?>
<!DOCTYPE Autodiscover [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request><EMailAddress>&xxe;@example.test</EMailAddress></Request>
</Autodiscover>`;
    const r = await post(xxe);
    assert.equal(r.status, 400);
    assert.doesNotMatch(r.body, /root:/);
    const laughs = `<!DOCTYPE a [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>${AUTODISCOVER_REQUEST('&b;@example.test')}`;
    assert.equal((await post(laughs)).status, 400);
    assert.equal((await post(AUTODISCOVER_REQUEST('&unknown;@example.test'))).status, 400);
    assert.equal((await post('not xml at all')).status, 400);
    assert.equal((await post('<Autodiscover><Request/></Autodiscover>')).status, 400);
  });

  test('oversized bodies get 413, by Content-Length and as they arrive (chunked)', async () => {
    const big = AUTODISCOVER_REQUEST(`${'a'.repeat(70 * 1024)}@example.test`);
    assert.equal((await post(big)).status, 413);
    // Chunked: no Content-Length; the server stops reading past 64 KiB.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: http,
          method: 'POST',
          path: '/autodiscover/autodiscover.xml',
          headers: { host: 'example.test', 'transfer-encoding': 'chunked' },
          agent: false,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(Buffer.alloc(8 * 1024, 0x20));
      req.end();
    });
    assert.equal(status, 413);
    // Exactly at the limit is read (and is not a request: 400).
    const atLimit = Buffer.alloc(64 * 1024, 0x20);
    assert.equal((await post(atLimit)).status, 400);
  });

  test('refusals: unknown domain 404, no address 400, other methods 405', async () => {
    assert.equal((await post(AUTODISCOVER_REQUEST('a@other.test'))).status, 404);
    assert.equal((await get('/autodiscover/autodiscover.xml?emailaddress=a%40other.test', 'x.test')).status, 404);
    assert.equal((await get('/autodiscover/autodiscover.xml', 'example.test')).status, 400);
    assert.equal((await post(AUTODISCOVER_REQUEST('no-at-sign'))).status, 400);
    const put = await fetchLocal(http, { method: 'PUT', path: '/autodiscover/autodiscover.xml', host: 'x', body: '' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'GET, HEAD, POST');
  });
});

function plistlib(body: string): Promise<Profile> {
  const script = 'import json,plistlib,sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))';
  return new Promise((resolve, reject) => {
    const child = execFile('/usr/bin/python3', ['-c', script], (err, stdout, stderr) =>
      err ? reject(new Error(stderr || err.message)) : resolve(JSON.parse(stdout)),
    );
    child.stdin?.end(body);
  });
}

describe('Apple configuration profile', () => {
  const path = (a: string) => `/apple/mobileconfig?emailaddress=${encodeURIComponent(a)}`;

  test('a com.apple.mail.managed payload over HTTPS, stable UUIDs per address; plistlib reads it', async () => {
    const r = await get(path('alice@example.test'), 'mx.test.example', true);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/x-apple-aspen-config');
    assert.match(String(r.headers['content-disposition']), /^attachment; filename="example\.test\.mobileconfig"$/);
    assert.equal(XMLValidator.validate(r.body), true);
    assert.ok(parser.parse(r.body).plist, 'a plist document');
    const profile = await plistlib(r.body);
    assert.equal(profile.PayloadType, 'Configuration');
    assert.equal(profile.PayloadVersion, 1);
    const [mail, ...more] = profile.PayloadContent;
    assert.equal(more.length, 0);
    assert.ok(mail);
    assert.equal(mail.PayloadType, 'com.apple.mail.managed');
    assert.equal(mail.EmailAccountType, 'EmailTypeIMAP');
    assert.equal(mail.EmailAddress, 'alice@example.test');
    assert.equal(mail.IncomingMailServerHostName, 'mx.test.example');
    assert.equal(mail.IncomingMailServerPortNumber, t.imapsPort);
    assert.equal(mail.IncomingMailServerUseSSL, true);
    assert.equal(mail.IncomingMailServerUsername, 'alice@example.test');
    assert.equal(mail.OutgoingMailServerPortNumber, t.submissionTlsPort);
    assert.equal(mail.OutgoingMailServerUseSSL, true);
    assert.equal(mail.OutgoingPasswordSameAsIncomingPassword, true);
    const uuid = /^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/;
    assert.match(profile.PayloadUUID, uuid);
    assert.match(mail.PayloadUUID, uuid);
    assert.notEqual(profile.PayloadUUID, mail.PayloadUUID);
    // Downloaded again: the same identifiers (the installed profile is replaced).
    const again = await plistlib((await get(path('Alice@Example.test'), 'example.test', true)).body);
    assert.equal(again.PayloadUUID, profile.PayloadUUID);
    assert.equal(again.PayloadIdentifier, profile.PayloadIdentifier);
    assert.equal(again.PayloadContent[0]?.PayloadUUID, mail.PayloadUUID);
    const bob = await plistlib((await get(path('bob@example.test'), 'mx.test.example', true)).body);
    assert.notEqual(bob.PayloadUUID, profile.PayloadUUID);
  });

  test('HTTPS only; unknown domain 404; no address 400', async () => {
    assert.equal((await get(path('alice@example.test'), 'mx.test.example')).status, 404);
    assert.equal((await get(path('alice@other.test'), 'mx.test.example', true)).status, 404);
    assert.equal((await get('/apple/mobileconfig', 'mx.test.example', true)).status, 400);
  });
});
