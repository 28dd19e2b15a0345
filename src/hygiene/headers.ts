// Header surgery on a received message, byte-exact everywhere else:
// - RFC 8601 §5: an Authentication-Results field that claims our authserv-id came from
//   somebody else (a forgery, or a copy bounced back to us) and MUST be removed before we add
//   ours, so a reader never trusts a result we did not produce.
// Fields are cut on raw lines (a field is its first line plus every following line that starts
// with a space or tab), so the rest of the header block is kept exactly as received.

/** The header block without the Authentication-Results fields whose authserv-id is `ours`
 *  (case-insensitive); null when there is none to remove. */
export function withoutOurAuthResults(block: Buffer, ours: string): Buffer | null {
  const lines = block.toString('latin1').split('\r\n');
  const kept: string[] = [];
  const id = ours.toLowerCase();
  let removed = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (/^authentication-results[ \t]*:/i.test(line) && authservIdOf(fieldValue(lines, i)) === id) {
      removed++;
      while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1] ?? '')) i++; // its folded lines go too
      continue;
    }
    kept.push(line);
  }
  return removed === 0 ? null : Buffer.from(kept.join('\r\n'), 'latin1');
}

/** The unfolded value of the field starting at line i. */
function fieldValue(lines: readonly string[], i: number): string {
  let v = (lines[i] ?? '').replace(/^[^:]*:/, '');
  for (let j = i + 1; j < lines.length && /^[ \t]/.test(lines[j] ?? ''); j++) v += lines[j];
  return v;
}

/** RFC 8601 §2.2: authserv-id is the first token of the value (comments and whitespace skipped). */
export function authservIdOf(value: string): string {
  let v = value;
  // Remove comments, which may nest (RFC 5322 §3.2.2); bounded by the value's length.
  for (let guard = 0; guard < 64 && /\([^()]*\)/.test(v); guard++) v = v.replace(/\([^()]*\)/g, ' ');
  const m = /^[ \t]*"?([^\s;"]+)/.exec(v);
  return (m?.[1] ?? '').toLowerCase();
}
