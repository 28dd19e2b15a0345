// Test and bench helper only: smtp-server (a devDependency) stands in for remote mail servers
// (test/harness/mx.ts, bench/queue.ts). It waits a hard-coded 100 ms before every 220 greeting
// to catch early talkers, which would cap each fake peer at ~10 sessions/s; this makes the
// pause the `greetingDelay` option (0 greets at once). A reply text that starts with its own
// enhanced status code ("5.7.1 ...") goes out with exactly that code (smtp-server derives one
// from the basic code alone), and AUTH before STARTTLS is 530 5.7.0 (RFC 3207 §4), as the
// peers the tests stand for would answer. Our own SMTP server does not use smtp-server
// (src/smtp/connection.ts).

import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

interface PatchedConnection {
  send(code: number, data?: string | string[], context?: string | false): void;
  init(): void;
  connectionReady(): void;
  _setListeners(callback: () => void): void;
  _server: {
    options: { maxClients?: number; greetingDelay?: number };
    connections: Set<unknown>;
  };
  name: string;
}

const OWN_ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

let installed = false;

export function installSmtpServerPatches(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as PatchedConnection;
  const send = proto.send;
  proto.send = function patchedSend(code, data, context) {
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
