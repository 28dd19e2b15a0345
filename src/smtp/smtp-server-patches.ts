// The places where we override smtp-server (pinned at 3.21.6) and why. Both are installed
// once per process by installSmtpServerPatches(); the tests pin the behaviour they produce.
//
// 1. Enhanced status codes. smtp-server derives the enhanced code (RFC 3463) from the basic
//    code alone (550 is always 5.1.1), so "relay denied" would read 550 5.1.1. A reply whose
//    text starts with its own enhanced code ("5.7.1 ...") goes out with exactly that code.
// 2. AUTH before STARTTLS. smtp-server answers "538 Error: Must issue a STARTTLS command
//    first"; RFC 3207 §4 specifies 530 5.7.0 for exactly this case, which clients know.
// 3. AUTH in EHLO before TLS. smtp-server lists AUTH on a plaintext connection even when it
//    will refuse it there. With our `authRequiresTls` option the EHLO reply leaves AUTH out
//    until STARTTLS (RFC 4954 §4: clients then know they must start TLS first).
// 4. Greeting delay. smtp-server waits a hard-coded 100 ms before every 220 greeting to catch
//    clients that talk before it ("early talkers"). That caps each session at ~10 messages/s
//    whatever the server's speed. We make the pause the `greetingDelay` option
//    ([smtp] greeting_delay): 0 by default, as in Postfix's smtpd; a few seconds gives
//    postscreen-style pre-greet detection (clients that talk first get "421 You talk too soon").

import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const OWN_ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

interface PatchedConnection {
  send(code: number, data?: string | string[], context?: string | false): void;
  init(): void;
  connectionReady(): void;
  _setListeners(callback: () => void): void;
  _server: {
    options: { maxClients?: number; greetingDelay?: number; authRequiresTls?: boolean };
    connections: Set<unknown>;
  };
  secure: boolean;
  name: string;
}

let installed = false;

export function installSmtpServerPatches(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as PatchedConnection;

  const send = proto.send;
  proto.send = function patchedSend(code, data, context) {
    if (code === 250 && Array.isArray(data) && !this.secure && this._server.options.authRequiresTls) {
      data = data.filter((line) => !/^AUTH\b/i.test(line));
    }
    if (code === 538) return send.call(this, 530, '5.7.0 Must issue a STARTTLS command first', false);
    if (typeof data === 'string' && OWN_ENHANCED.test(data)) return send.call(this, code, data, false);
    return send.call(this, code, data, context);
  };

  // Same as the library's init(), with the delay taken from the options.
  proto.init = function patchedInit() {
    this._setListeners(() => {
      const { maxClients, greetingDelay = 100 } = this._server.options;
      if (maxClients && this._server.connections.size > maxClients) {
        this.send(421, `${this.name} Too many connected clients, try again in a moment`, false);
        return;
      }
      if (greetingDelay <= 0) {
        this.connectionReady();
        return;
      }
      setTimeout(() => this.connectionReady(), greetingDelay).unref();
    });
  };
}
