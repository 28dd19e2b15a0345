// A text flame-graph summary of V8 CPU profiles (.cpuprofile, as `node --cpu-prof` writes them),
// for docs/benchmarks.md: self time by area (npm package, Node core, our source folders), self
// time by source file, and the top functions by self and by inclusive time. Every .cpuprofile in
// the directory is summed (one per process and worker thread).
//
//   npm run bench:profile-summary -- /tmp/prof [--top 20]
//   npm run bench -- --vs-postfix --repeat 1 --arcline checks \
//     --server-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof" && npm run bench:profile-summary -- /tmp/prof

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const SPECIAL = new Set(['(garbage collector)', '(program)', '(idle)', '(root)']);

/** Where a frame's code lives: "npm:<package>", "node:<module>", "src/<folder>", or a special. */
function area(f: CallFrame): string {
  if (f.url === '') return SPECIAL.has(f.functionName) ? f.functionName : '(native)';
  if (f.url.startsWith('wasm:')) return 'wasm';
  if (f.url.startsWith('node:')) return `node:${f.url.slice(5).split('/').slice(0, 2).join('/')}`;
  const nm = f.url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = f.url.slice(nm + 14).split('/');
    return `npm:${parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  const file = sourceFile(f);
  const parts = file.split('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : file;
}

/** The url shortened to the repository (src/…, bin/…) or to the package (npm:pkg/…). */
function sourceFile(f: CallFrame): string {
  if (f.url === '') return SPECIAL.has(f.functionName) ? f.functionName : `(native) ${f.functionName}`;
  const nm = f.url.lastIndexOf('/node_modules/');
  if (nm >= 0) return `npm:${f.url.slice(nm + 14)}`;
  if (f.url.startsWith('node:')) return f.url;
  const m = /\/((?:src|bin|bench|test)\/.*)$/.exec(f.url);
  return m?.[1] ?? f.url.replace(/^file:\/\//, '');
}

function fnKey(f: CallFrame): string {
  if (f.url === '') return SPECIAL.has(f.functionName) ? f.functionName : `(native) ${f.functionName}`;
  return `${f.functionName || '(anonymous)'} ${sourceFile(f)}:${f.lineNumber + 1}`;
}

/** Frames of our code and of npm packages (not Node's own JavaScript or native code). */
const ours = (key: string) => !key.startsWith('(') && !key.includes(' node:') && !key.startsWith('wasm');

/** The leaf's area; native code (V8 builtins, Node's C++ bindings: a write, an fsync) is shown
 *  with the area of the nearest caller outside Node's own JavaScript, "(native) via src/store". */
function leafArea(leaf: ProfileNode, byId: Map<number, ProfileNode>, parent: Map<number, number>): string {
  const own = area(leaf.callFrame);
  if (own !== '(native)') return own;
  for (let id = parent.get(leaf.id); id !== undefined; id = parent.get(id)) {
    const n = byId.get(id);
    if (n && n.callFrame.url !== '' && !n.callFrame.url.startsWith('node:')) return `(native) via ${area(n.callFrame)}`;
  }
  return own;
}

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

interface Totals {
  totalUs: number;
  byArea: Map<string, number>;
  byFile: Map<string, number>;
  self: Map<string, number>;
  inclusive: Map<string, number>;
}

function accumulate(p: Profile, t: Totals): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Sample i lasts until sample i+1 (timeDeltas[i+1]); the last one gets the mean.
  const mean = p.timeDeltas.reduce((a, b) => a + b, 0) / Math.max(1, p.timeDeltas.length);
  for (let i = 0; i < p.samples.length; i++) {
    const us = Math.max(0, p.timeDeltas[i + 1] ?? mean);
    const leaf = byId.get(p.samples[i] as number);
    if (!leaf) continue;
    t.totalUs += us;
    add(t.byArea, leafArea(leaf, byId, parent), us);
    add(t.byFile, sourceFile(leaf.callFrame), us);
    add(t.self, fnKey(leaf.callFrame), us);
    // Inclusive: each function on the stack once per sample, however often it recurses.
    const onStack = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (!n || n.callFrame.functionName === '(root)') continue;
      onStack.add(fnKey(n.callFrame));
    }
    for (const k of onStack) add(t.inclusive, k, us);
  }
}

function table(title: string, map: Map<string, number>, totalUs: number, top: number): string[] {
  const rows = [...map].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `\n### ${title}\n`,
    '| ms | % | |',
    '|---:|---:|---|',
    ...rows.map(([k, us]) => `| ${(us / 1000).toFixed(0)} | ${((100 * us) / totalUs).toFixed(1)} | \`${k}\` |`),
  ];
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string' } }, allowPositionals: true });
  const dir = positionals[0];
  if (!dir) throw new Error('usage: npm run bench:profile-summary -- <dir with .cpuprofile files> [--top N]');
  const top = Number(values.top ?? 20);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  const t: Totals = { totalUs: 0, byArea: new Map(), byFile: new Map(), self: new Map(), inclusive: new Map() };
  for (const f of files) accumulate(JSON.parse(await readFile(join(dir, f), 'utf8')) as Profile, t);
  const idle = t.byArea.get('(idle)') ?? 0;
  const busy = t.totalUs - idle;
  // Percentages are of the busy time (everything but idle), which is what the server spent CPU on.
  t.byArea.delete('(idle)');
  t.byFile.delete('(idle)');
  t.self.delete('(idle)');
  t.inclusive.delete('(idle)');
  const out = [
    `## CPU profile: ${files.length} file(s) in ${dir}`,
    `\nsampled ${(t.totalUs / 1e6).toFixed(2)} s, of which busy ${(busy / 1e6).toFixed(2)} s (idle ${(idle / 1e6).toFixed(2)} s); percentages are of the busy time`,
    ...table('Self time by area (npm package, Node core module, source folder)', t.byArea, busy, top),
    ...table('Self time by source file', t.byFile, busy, top),
    ...table('Top functions by self time', t.self, busy, top),
    ...table(
      'Top functions by inclusive time (self + callees; arcline and npm packages only)',
      new Map([...t.inclusive].filter(([k]) => ours(k))),
      busy,
      top,
    ),
  ];
  console.log(out.join('\n'));
}

await main();
