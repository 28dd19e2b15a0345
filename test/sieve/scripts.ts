// Scripts the storage tests share (CLI, ManageSieve clients): what a client must get back byte
// for byte.

/** CRLF, a Roundcube-style marked block with trailing spaces and a tab, non-ASCII, a bare LF. */
export const ROUNDCUBE_SCRIPT = Buffer.from(
  'require ["fileinto","vacation"];\r\n' +
    '# rule:[Rechnungen für Ärger]\r\n' +
    'if header :contains "subject" "Rechnung ☃"\r\n' +
    '{\r\n\tfileinto "Rechnungen";  \r\n}\n' +
    '# rule:[urlaub]\r\nif true { vacation :days 3 "Bin weg — zurück am Montag."; }\r\n',
  'utf8',
);
