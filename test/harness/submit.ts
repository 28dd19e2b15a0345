// Helpers for tests of the outbound path: a nodemailer client on the submission port, and
// polling for something the server does in the background (queue runs, log lines).

import nodemailer from 'nodemailer';

export const PASSWORD = 'secret-password';

/** nodemailer on submission with STARTTLS and AUTH (the test servers' users share PASSWORD). */
export function submitter(port: number, user = 'alice@example.test') {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    auth: { user, pass: PASSWORD },
  });
}

/** Polls `fn` every 25 ms until it returns something truthy; fails after `ms`. */
export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
