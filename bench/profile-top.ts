import { readFileSync } from 'node:fs';

/**
 * node --import tsx bench/profile-top.ts FILE.cpuprofile [N]
 * The `N` (25) heaviest functions of a V8 CPU profile by self time, and the heaviest source
 * files and packages, as shares of the busy (non-idle) samples: where a profiled Bulwark
 * process spent its CPU (`npm run bench -- --profile` writes the profiles).
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

const [file, top = '25'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node --import tsx bench/profile-top.ts FILE.cpuprofile [N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const hits = new Map<number, number>();
for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);

const fn = new Map<string, number>();
const files = new Map<string, number>();
let busy = 0;
let idle = 0;
for (const [id, n] of hits) {
  const node = byId.get(id);
  if (!node) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)' || functionName === '(program)') {
    idle += functionName === '(idle)' ? n : 0;
    if (functionName === '(idle)') continue;
  }
  busy += n;
  const short = url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, 'npm:')
    .replace(/.*\/packages\//, 'packages/');
  fn.set(`${functionName || '(anonymous)'}  ${short}:${lineNumber + 1}`, (fn.get(`${functionName || '(anonymous)'}  ${short}:${lineNumber + 1}`) ?? 0) + n);
  const where = short.startsWith('npm:')
    ? short
        .split('/')
        .slice(0, short.startsWith('npm:@') ? 2 : 1)
        .join('/')
    : short || functionName;
  files.set(where, (files.get(where) ?? 0) + n);
}
const pct = (n: number) => `${((n / Math.max(1, busy)) * 100).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${busy} busy samples, ${idle} idle`);
console.log('\nself time by function:');
for (const [k, n] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) console.log(`${pct(n)}  ${k}`);
console.log('\nself time by file or package:');
for (const [k, n] of [...files].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) console.log(`${pct(n)}  ${k}`);
