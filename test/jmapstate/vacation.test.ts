// The VacationResponse as Sieve sends it (src/jmapstate/vacation.ts): when it applies, and the
// vacation action it becomes, written out by the Sieve reply builder for text, HTML and both.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_VACATION, vacationAction, vacationActive } from '../../src/jmapstate/vacation.ts';
import { buildVacationReply } from '../../src/sieve/vacation.ts';

const NOW = new Date('2026-12-07T04:00:00Z');

test('vacationActive: enabled, from fromDate (inclusive) to toDate (exclusive)', () => {
  const v = { ...DEFAULT_VACATION, isEnabled: true };
  assert.equal(vacationActive(DEFAULT_VACATION, NOW), false);
  assert.equal(vacationActive(v, NOW), true);
  assert.equal(vacationActive({ ...v, fromDate: '2026-12-07T04:00:00Z' }, NOW), true);
  assert.equal(vacationActive({ ...v, fromDate: '2026-12-07T04:00:01Z' }, NOW), false);
  assert.equal(vacationActive({ ...v, toDate: '2026-12-07T04:00:00Z' }, NOW), false);
  assert.equal(vacationActive({ ...v, toDate: '2026-12-08T00:00:00Z' }, NOW), true);
});

function reply(v: Parameters<typeof vacationAction>[0]): string {
  const a = vacationAction(v, 86400);
  return buildVacationReply({
    headers: [
      { name: 'Subject', value: 'Lunch?' },
      { name: 'Message-ID', value: '<q1@remote.test>' },
    ],
    to: 'carol@remote.test',
    recipient: 'alice@example.test',
    from: a.from,
    subject: a.subject,
    reason: a.reason,
    mime: a.mime,
    hostname: 'mx.example.test',
    now: NOW,
  }).toString();
}

test('vacationAction: the [sieve] period, a handle per absence, the subject or "Auto:"', () => {
  const v = { ...DEFAULT_VACATION, isEnabled: true, fromDate: '2026-12-01T00:00:00Z', textBody: 'Away.' };
  const a = vacationAction(v, 86400);
  assert.equal(a.seconds, 86400);
  assert.equal(a.handle, 'jmap-vacation:2026-12-01T00:00:00Z');
  assert.notEqual(vacationAction({ ...v, fromDate: null }, 1).handle, a.handle);
  assert.equal(a.mime, false);
  const text = reply(v);
  assert.match(text, /^Subject: Auto: Lunch\?\r$/m);
  assert.match(text, /^Content-Type: text\/plain; charset=utf-8\r$/m);
  assert.match(text, /\r\n\r\nAway\.\r\n$/);
  assert.match(reply({ ...v, subject: 'Out' }), /^Subject: Out\r$/m);
});

test('vacationAction: htmlBody alone is text/html; with textBody multipart/alternative', () => {
  const v = { ...DEFAULT_VACATION, isEnabled: true, htmlBody: '<p>Away — back Monday.</p>' };
  const html = reply(v);
  assert.match(html, /^Content-Type: text\/html; charset=utf-8\r$/m);
  assert.match(html, /^Content-Transfer-Encoding: quoted-printable\r$/m);
  assert.match(html, /<p>Away =E2=80=94 back Monday\.<\/p>/);
  const both = reply({ ...v, textBody: 'Away, back Monday.' });
  const boundary = /^Content-Type: multipart\/alternative; boundary="([^"]+)"\r$/m.exec(both)?.[1];
  assert.ok(boundary);
  assert.equal(both.split(`--${boundary}\r\n`).length, 3);
  assert.ok(both.includes(`--${boundary}--`));
  assert.match(both, /text\/plain[\s\S]*Away, back Monday\.[\s\S]*text\/html/);
});
