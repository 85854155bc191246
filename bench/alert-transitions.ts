import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import { startTestServer } from '../packages/server/src/testing/harness.js';

/**
 * node --import tsx bench/alert-transitions.ts [--transitions 3000] [--rate 100] [--rounds 3]
 *   [--batch-ms N] [--channel single|batch|none] [--threads] [--profile DIR]
 *
 * The CPU one alert transition costs the node, apart from ingest: an embedded server (its
 * real AlertService, SQLite store in a temporary directory and notifier) fires and resolves
 * alerts of one rule over 500 devices at --rate a second (the alerts phase's churn), each
 * notified to a webhook receiver in another process (a channel that gets one POST per
 * notification, or a batching one; `none`: the store's share alone). The node's process CPU
 * (every thread) over --transitions after 300 of warm-up, until the receiver has every
 * notification, divided by the transitions, less the CPU of the same pacing with nothing to do
 * (the server's timers and this loop, measured just before): printed per round, and the median. Less noisy
 * than the alerts phase (no load generator, no ingest), so one change can be weighed.
 * --batch-ms sets alerts.transitionBatchMs. --threads adds each thread's share (Linux: the
 * main thread, the SQLite worker, V8's helpers); --profile writes the main thread's CPU
 * profile of the measured window (not the start-up) to DIR, for bench/profile-top.ts.
 */

const { values: o } = parseArgs({
  options: {
    transitions: { type: 'string', default: '3000' },
    rate: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    'batch-ms': { type: 'string' },
    channel: { type: 'string', default: 'single' },
    threads: { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});
const [total, perSecond, rounds] = [Number(o.transitions), Number(o.rate), Number(o.rounds)];
const channel = o.channel as 'single' | 'batch' | 'none';
if (!['single', 'batch', 'none'].includes(channel)) throw new Error('--channel takes single, batch or none');
const WARMUP = 300;
const DEVICES = 500;

/** A webhook receiver in its own process (its CPU is not the node's): prints the count of notifications it took on each line it reads. */
async function receiver(): Promise<{ url: string; count: () => Promise<number>; close: () => void }> {
  const code = `
    const http = require('node:http'); let n = 0;
    const s = http.createServer((req, res) => { let body = ''; req.setEncoding('utf8'); req.on('data', (d) => (body += d)); req.on('end', () => { const b = JSON.parse(body); n += Array.isArray(b.notifications) ? b.notifications.length : 1; res.end('ok'); }); });
    s.keepAliveTimeout = 60000;
    s.listen(0, '127.0.0.1', () => console.log(s.address().port));
    process.stdin.on('data', () => console.log(n));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  child.stdout.on('data', (d: string) => {
    lines.push(...d.split('\n').filter(Boolean));
    wake?.();
  });
  const next = async (): Promise<string> => {
    while (lines.length === 0) await new Promise<void>((r) => (wake = r));
    return lines.shift() as string;
  };
  const port = await next();
  return {
    url: `http://127.0.0.1:${port}/hook`,
    count: async () => {
      child.stdin.write('?\n');
      return Number(await next());
    },
    close: () => child.kill(),
  };
}

/** CPU µs of each thread of this process so far, by thread id (Linux; empty elsewhere). */
function threadCpu(): Map<string, number> {
  const ticks = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      // utime and stime are fields 14 and 15, counted after the parenthesised name.
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ');
      ticks.set(tid, ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100);
    }
  } catch {
    // not Linux: no per-thread figures
  }
  return ticks;
}

function printThreads(before: Map<string, number>, count: number): void {
  const shares = [...threadCpu()]
    .map(([tid, us]) => [tid, us - (before.get(tid) ?? 0)] as const)
    .filter(([, us]) => us > 0)
    .sort((a, b) => b[1] - a[1]);
  console.log(`  by thread (µs per transition): ${shares.map(([tid, us]) => `${tid === String(process.pid) ? 'main' : tid} ${(us / count).toFixed(0)}`).join(', ')}`);
}

async function round(n: number): Promise<number> {
  const cleanups: (() => unknown)[] = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;
  const rx = await receiver();
  try {
    const s = await startTestServer(t, {
      config: {
        webhooks: { allowHttp: true, allowPrivateTargets: true },
        alerts: { groupWaitMs: 0, groupMinAlerts: 1_000_000, flapMaxFires: 1_000_000, notifyPollIntervalMs: 1000, ...(o['batch-ms'] !== undefined ? { transitionBatchMs: Number(o['batch-ms']) } : {}) },
      },
    });
    const admin = await s.tokenFor(s.adminKey);
    if (channel !== 'none') {
      const ch = await s.api('POST', '/api/v1/alerts/channels', { token: admin, body: { name: 'bench', url: rx.url, ...(channel === 'batch' ? { batch: true } : {}) } });
      if (ch.status !== 201) throw new Error(ch.text);
    }
    const alerts = s.server.alerts.service;
    const rule = await alerts.createRule({ name: 'bench', severity: 'warning', condition: { kind: 'threshold', field: 'a', op: '>', value: 0.5, for: '0s' } }, 'bench');
    const open = new Set<number>();
    let i = 0;
    /** One transition: fires on the next device, or resolves it when its alert is open (every device fires and resolves in turn). */
    let idle = false;
    const step = async () => {
      if (idle) return;
      const d = i++ % DEVICES;
      if (open.delete(d)) await alerts.clear(rule, `dev-${d}`, 'a back to 0');
      else {
        open.add(d);
        await alerts.fire(rule, `dev-${d}`, 'a above 0.5', { since: Date.now(), value: 1 });
      }
    };
    const run = async (count: number) => {
      const pending: Promise<void>[] = [];
      const started = performance.now();
      for (let k = 0; k < count; k += 1) {
        const wait = started + (k * 1000) / perSecond - performance.now();
        if (wait > 0) await delay(wait);
        pending.push(step());
      }
      await Promise.all(pending);
    };
    await run(WARMUP);
    while (channel !== 'none' && (await rx.count()) < WARMUP) await delay(50);
    // The same pacing with nothing to do: what the server and this loop cost at rest, taken off below.
    await alerts.flush();
    idle = true;
    const idleBefore = process.cpuUsage();
    await run(total);
    const idleUsed = process.cpuUsage(idleBefore);
    idle = false;
    const profiler = o.profile === undefined ? undefined : new Session();
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      // Finer than the default 1 ms: a transition's work is a few hundred microseconds in small pieces.
      await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
      await profiler.post('Profiler.start');
    }
    const threads = threadCpu();
    const before = process.cpuUsage();
    await run(total);
    while (channel !== 'none' && (await rx.count()) < WARMUP + total) await delay(20);
    await alerts.flush();
    const used = process.cpuUsage(before);
    if (profiler && o.profile !== undefined) {
      const { profile } = await profiler.post('Profiler.stop');
      mkdirSync(o.profile, { recursive: true });
      writeFileSync(join(o.profile, `alert-transitions-${channel}-${n}.cpuprofile`), JSON.stringify(profile));
      profiler.disconnect();
    }
    const gross = (used.user + used.system) / total;
    const atRest = (idleUsed.user + idleUsed.system) / total;
    const us = gross - atRest;
    console.log(`round ${n}: ${total} transitions at ${perSecond}/s, channel ${channel}: ${us.toFixed(0)} µs of the node's CPU per transition (${gross.toFixed(0)} with the process at rest, which costs ${atRest.toFixed(0)} per step of the same pacing)`);
    if (o.threads) printThreads(threads, total);
    return us;
  } finally {
    for (const fn of cleanups.reverse()) await fn();
    rx.close();
  }
}

const results: number[] = [];
for (let r = 1; r <= rounds; r += 1) results.push(await round(r));
const sorted = [...results].sort((a, b) => a - b);
console.log(`median ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(0)} µs per transition over ${rounds} rounds`);
await once(process, 'beforeExit');
