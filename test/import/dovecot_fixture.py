#!/usr/bin/python3
# Drives a real IMAP server with Python's imaplib for test/import/dovecot.test.ts (issue #13):
#   populate HOST PORT USER PASSWORD   APPENDs into INBOX and folders (a nested one, a non-ASCII
#                                      one), sets flags and keywords, expunges some (UID gaps),
#                                      subscribes; prints nothing on success
#   dump HOST PORT USER PASSWORD       prints the account as JSON: folders (LIST), subscriptions
#                                      (LSUB), and per folder UIDVALIDITY, UIDNEXT and every message's
#                                      UID, flags and body (base64 of BODY.PEEK[])
import base64
import imaplib
import json
import re
import sys
import time


def mutf7_encode(name):
    out, pending = [], []

    def flush():
        if pending:
            raw = ''.join(pending).encode('utf-16-be')
            out.append('&' + base64.b64encode(raw).decode().rstrip('=').replace('/', ',') + '-')
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append('&-' if ch == '&' else ch)
        else:
            pending.append(ch)
    flush()
    return ''.join(out)


def mutf7_decode(name):
    def dec(m):
        s = m.group(1)
        if s == '':
            return '&'
        s = s.replace(',', '/')
        s += '=' * (-len(s) % 4)
        return base64.b64decode(s).decode('utf-16-be')

    return re.sub(r'&([^-]*)-', dec, name)


def q(name):
    return '"' + mutf7_encode(name).replace('\\', '\\\\').replace('"', '\\"') + '"'


def check(res):
    typ, data = res
    if typ != 'OK':
        raise SystemExit(f'IMAP command failed: {typ} {data!r}')
    return data


def message(n, folder, lf=True):
    nl = '\n' if lf else '\r\n'
    body = nl.join([
        f'From: Sender {n} <sender{n}@example.org>',
        'To: user@example.test',
        f'Subject: message {n} in {mutf7_encode(folder)}',
        f'Message-ID: <{n}.{len(folder)}@example.org>',
        'Date: Mon, 02 Mar 2026 10:00:00 +0000',
        '',
        f'Body of message {n}.',
        'Second line.',
        '',
    ])
    return body.encode()


FOLDERS = ['Archive', 'Projects', 'Projects.Alpha', 'Réunions 2026', 'Empty']


def populate(imap):
    for f in FOLDERS:
        check(imap.create(q(f)))
    plan = {'INBOX': 7, 'Archive': 4, 'Projects.Alpha': 5, 'Réunions 2026': 3, 'Projects': 2}
    for folder, count in plan.items():
        for i in range(1, count + 1):
            flags = '(\\Seen)' if i % 2 == 0 else None
            check(imap.append(q(folder), flags, imaplib.Time2Internaldate(1767225600 + i * 3600),
                              message(i, folder, lf=i % 3 != 0)))
    # flags and keywords (keywords become letters a-z in the Maildir file names)
    check(imap.select(q('INBOX')))
    check(imap.uid('STORE', '1', '+FLAGS', '(\\Flagged $Important)'))
    check(imap.uid('STORE', '2', '+FLAGS', '(\\Answered project-x)'))
    check(imap.uid('STORE', '3', '+FLAGS', '(\\Draft $Important NonJunk)'))
    check(imap.uid('STORE', '4,6', '+FLAGS', '(\\Deleted)'))
    check(imap.expunge())  # UIDs 4 and 6 are gone: gaps
    check(imap.uid('STORE', '7', '+FLAGS', '(\\Deleted)'))  # kept with \Deleted, not expunged
    check(imap.select(q('Projects.Alpha')))
    check(imap.uid('STORE', '1:2', '+FLAGS', '(\\Deleted)'))
    check(imap.expunge())
    check(imap.uid('STORE', '5', '+FLAGS', '($Forwarded review)'))
    check(imap.select(q('Réunions 2026')))
    check(imap.uid('STORE', '2', '+FLAGS', '(\\Flagged urgent)'))
    check(imap.close())
    for f in ['INBOX', 'Archive', 'Projects.Alpha', 'Réunions 2026']:
        check(imap.subscribe(q(f)))


def dump(imap):
    out = {'folders': [], 'subscribed': [], 'mailboxes': {}}
    for line in check(imap.list('""', '*')):
        m = re.match(rb'\((.*?)\) (?:"(.)"|NIL) (.*)$', line)
        attrs, name = m.group(1).decode(), m.group(3).decode().strip('"')
        out['folders'].append({'name': mutf7_decode(name), 'noselect': '\\noselect' in attrs.lower()})
    for line in check(imap.lsub('""', '*')):
        m = re.match(rb'\((.*?)\) (?:"(.)"|NIL) (.*)$', line)
        out['subscribed'].append(mutf7_decode(m.group(3).decode().strip('"')))
    for f in out['folders']:
        if f['noselect']:
            continue
        name = f['name']
        typ, data = imap.status(q(name), '(UIDVALIDITY UIDNEXT MESSAGES)')
        st = dict(re.findall(rb'(UIDVALIDITY|UIDNEXT|MESSAGES) (\d+)', data[0]))
        check(imap.select(q(name), readonly=True))
        msgs = []
        if int(st[b'MESSAGES']) > 0:
            data = check(imap.uid('FETCH', '1:*', '(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])'))
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head, body = item
                uid = int(re.search(rb'UID (\d+)', head).group(1))
                flags = re.search(rb'FLAGS \((.*?)\)', head).group(1).decode().split()
                date = int(time.mktime(imaplib.Internaldate2tuple(head)))
                size = int(re.search(rb'RFC822.SIZE (\d+)', head).group(1))
                msgs.append({'uid': uid, 'flags': sorted(f for f in flags if f != '\\Recent'),
                             'internaldate': date, 'size': size,
                             'body': base64.b64encode(body).decode()})
        check(imap.close())
        out['mailboxes'][name] = {'uidvalidity': int(st[b'UIDVALIDITY']), 'uidnext': int(st[b'UIDNEXT']),
                                  'messages': sorted(msgs, key=lambda m: m['uid'])}
    print(json.dumps(out, ensure_ascii=False, sort_keys=True))


def main():
    cmd, host, port, user, password = sys.argv[1:6]
    imap = imaplib.IMAP4(host, int(port), timeout=15)
    check(imap.login(user, password))
    {'populate': populate, 'dump': dump}[cmd](imap)
    imap.logout()


main()
