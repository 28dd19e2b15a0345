// Untrusted text (remote replies, client-supplied values) on its way into a log line, a header
// field or a DSN: one line, printable, bounded, so it can never end a field and start another.

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROLS = /[\x00-\x1f\x7f]+/g;

export function oneLine(s: string, max = 1000): string {
  const t = s.replace(CONTROLS, ' ');
  return t.trim().slice(0, max);
}
