// The mail index's prepared statements (index/db.ts), by name.

import type { DatabaseSync, StatementSync } from 'node:sqlite';

export function prepare(db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    mailbox: p('SELECT * FROM mailboxes WHERE account = ? AND name = ?'),
    mailboxes: p('SELECT * FROM mailboxes WHERE account = ? ORDER BY name'),
    accounts: p('SELECT DISTINCT account FROM mailboxes'),
    lastValidity: p('SELECT last FROM uidvalidity_seq WHERE account = ?'),
    setValidity: p(
      'INSERT INTO uidvalidity_seq (account, last) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET last = excluded.last',
    ),
    insertMailbox: p(
      'INSERT INTO mailboxes (account, name, uidvalidity, uidnext, highestmodseq, subscribed, oid, sort_order) VALUES (?, ?, ?, 1, 1, ?, ?, ?)',
    ),
    oidTaken: p('SELECT 1 FROM mailboxes WHERE oid = ?'),
    mailboxRowById: p('SELECT * FROM mailboxes WHERE id = ?'),
    messagesAfter: p('SELECT * FROM messages WHERE mailbox = ? AND modseq > ? ORDER BY uid'),
    mailboxById: p('SELECT account, oid, name FROM mailboxes WHERE id = ?'),
    mailboxByOid: p('SELECT id FROM mailboxes WHERE account = ? AND oid = ?'),
    emailsWithoutId: p('SELECT account, base FROM emails WHERE id IS NULL LIMIT 5000'),
    setEmailId: p('UPDATE emails SET id = ? WHERE account = ? AND base = ?'),
    emailAdd: p(
      'INSERT INTO emails (account, base, id, internaldate, size, copies) VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (account, base) DO UPDATE SET copies = copies + 1',
    ),
    emailDrop: p('UPDATE emails SET copies = copies - 1 WHERE account = ? AND base = ?'),
    emailDelete: p('DELETE FROM emails WHERE account = ? AND base = ? AND copies <= 0'),
    emailById: p('SELECT base, internaldate, size, thread FROM emails WHERE account = ? AND id = ?'),
    copiesOf: p(
      // CROSS JOIN: SQLite then looks the base up first (messages_by_base), instead of scanning
      // each of the account's mailboxes for it.
      'SELECT b.oid, b.name, m.uid, m.letters FROM messages m CROSS JOIN mailboxes b ON b.id = m.mailbox WHERE m.base = ? AND b.account = ? ORDER BY b.name, m.uid',
    ),
    messageBases: p('SELECT uid, base FROM messages WHERE mailbox = ? ORDER BY uid'),
    baseOf: p('SELECT base FROM messages WHERE mailbox = ? AND uid = ?'),
    aseqGet: p('SELECT last, floor, start FROM account_seq WHERE account = ?'),
    aseqInsert: p('INSERT INTO account_seq (account, last, floor, start) VALUES (?, ?, ?, ?)'),
    aseqSet: p('UPDATE account_seq SET last = ? WHERE account = ?'),
    aseqFloor: p('UPDATE account_seq SET floor = ? WHERE account = ?'),
    accountJournal: p(
      'INSERT INTO account_changes (account, aseq, kind, mailbox, uid, base, thread) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    accountChanges: p(
      'SELECT aseq, kind, mailbox, uid, base, thread FROM account_changes WHERE account = ? AND aseq > ? ORDER BY aseq LIMIT ?',
    ),
    accountPrune: p('DELETE FROM account_changes WHERE account = ? AND aseq <= ?'),
    deleteMailbox: p('DELETE FROM mailboxes WHERE id = ?'),
    importMailbox: p(
      'INSERT INTO mailboxes (account, name, uidvalidity, uidnext, highestmodseq, subscribed, journal_floor, oid) VALUES (?, ?, ?, ?, 1, ?, 1, ?)',
    ),
    renameMailbox: p('UPDATE mailboxes SET name = ? WHERE id = ?'),
    subscribe: p('UPDATE mailboxes SET subscribed = ? WHERE id = ?'),
    setSortOrder: p('UPDATE mailboxes SET sort_order = ? WHERE id = ?'),
    counters: p('UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?'),
    messages: p('SELECT * FROM messages WHERE mailbox = ? ORDER BY uid'),
    insertMessage: p(
      'INSERT INTO messages (mailbox, uid, base, in_new, letters, modseq, size, internaldate) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    updateMessage: p('UPDATE messages SET in_new = ?, letters = ?, modseq = ? WHERE mailbox = ? AND uid = ?'),
    deleteMessage: p('DELETE FROM messages WHERE mailbox = ? AND uid = ?'),
    journal: p('INSERT OR REPLACE INTO changes (mailbox, modseq, kind, uid) VALUES (?, ?, ?, ?)'),
    vanished: p('SELECT uid FROM changes WHERE mailbox = ? AND kind = 3 AND modseq > ? ORDER BY uid'),
    changes: p('SELECT modseq, kind, uid FROM changes WHERE mailbox = ? AND modseq > ? ORDER BY modseq, uid'),
    prune: p('DELETE FROM changes WHERE mailbox = ? AND kind <> 3 AND modseq <= ?'),
    floor: p('SELECT journal_floor FROM mailboxes WHERE id = ?'),
    setFloor: p('UPDATE mailboxes SET journal_floor = ? WHERE id = ? AND journal_floor < ?'),
    exists: p('SELECT 1 FROM messages WHERE mailbox = ? AND uid = ?'),
    cacheGet: p('SELECT envelope, structure, search FROM cache WHERE mailbox = ? AND uid = ?'),
    cacheRangeEnvelope: p('SELECT uid, envelope AS v FROM cache WHERE mailbox = ? AND uid BETWEEN ? AND ?'),
    cacheRangeStructure: p('SELECT uid, structure AS v FROM cache WHERE mailbox = ? AND uid BETWEEN ? AND ?'),
    cacheRangeSearch: p('SELECT uid, search AS v FROM cache WHERE mailbox = ? AND uid BETWEEN ? AND ?'),
    cacheSearch: p(
      'INSERT INTO cache (mailbox, uid, search) VALUES (?, ?, ?) ON CONFLICT (mailbox, uid) DO UPDATE SET search = excluded.search',
    ),
    cacheEnvelope: p(
      'INSERT INTO cache (mailbox, uid, envelope) VALUES (?, ?, ?) ON CONFLICT (mailbox, uid) DO UPDATE SET envelope = excluded.envelope',
    ),
    cacheStructure: p(
      'INSERT INTO cache (mailbox, uid, structure) VALUES (?, ?, ?) ON CONFLICT (mailbox, uid) DO UPDATE SET structure = excluded.structure',
    ),
  };
}
