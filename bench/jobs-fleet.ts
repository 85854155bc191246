import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { makeDeviceKeys } from '../packages/server/src/testing/devices.js';
import { type Api, must } from './bulwark-api.js';
import { progress, startTsChild, stopChild, tempDir } from './children.js';
import { pool } from './proc.js';

/**
 * The jobs bench's fleet: N devices onboarded through the API (one factory batch request per
 * 1,000, each device with its own P-256 key and CSR, certified by the platform CA), and their
 * simulated sessions in a child process (bench/jobs-devices.ts).
 */

export const jobsDeviceId = (i: number): string => `jb-${String(i).padStart(6, '0')}`;
export const JOBS_ID_PREFIX = 'jb-';

/** Onboards `n` devices; returns the file the device child reads ({ca, devices: [{id, key, cert}]}). */
export async function onboard(api: Api, n: number): Promise<string> {
  const ids = Array.from({ length: n }, (_, i) => jobsDeviceId(i));
  const t0 = performance.now();
  const keys = await pool(ids, 32, (id) => makeDeviceKeys(id));
  progress(`jobs: ${n.toLocaleString('en')} device keys and CSRs made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const devices: { id: string; key: string; cert: string }[] = [];
  for (let start = 0; start < n; start += 1000) {
    const batch = ids.slice(start, start + 1000);
    const res = await must('batch onboarding', 201, api('POST', '/api/v1/devices/batch', { devices: batch.map((id, k) => ({ id, csr: keys[start + k]?.csrPem })) }));
    (res.devices as { id: string; certificate: string }[]).forEach((d, k) => devices.push({ id: d.id, key: keys[start + k]?.keyPem ?? '', cert: d.certificate }));
    if ((start / 1000) % 5 === 4 || start + 1000 >= n) progress(`jobs: onboarded ${devices.length.toLocaleString('en')} of ${n.toLocaleString('en')} devices (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  // The CA chain devices verify the gateway with (as enrollment hands it out).
  const ca = await must('CA chain', 200, api('GET', '/api/v1/pki/ca.pem', undefined, false));
  if (typeof ca !== 'string' || !ca.includes('BEGIN CERTIFICATE')) throw new Error('GET /api/v1/pki/ca.pem: no PEM');
  const file = join(tempDir('bulwark-jobs-'), 'fleet.json');
  writeFileSync(file, JSON.stringify({ ca, devices }));
  return file;
}

export interface VersionStats {
  received: number;
  duplicates: number;
  acked: number;
  first: number | null;
  last: number | null;
  answerP50: number | null;
  answerP95: number | null;
  answerMax: number | null;
  arrivals?: Record<string, number>;
}
export interface DeviceStats {
  open: number;
  failed: number;
  dropped: number;
  dropReasons: Record<string, number>;
  cpuMs: number;
  rssMb: number;
  versions: Record<string, VersionStats>;
}

export interface SimulatedFleet {
  readonly pid: number;
  readonly connected: { open: number; failed: number; retries: number; seconds: number; errors: string[] };
  stats(versions: readonly number[], arrivals: boolean): Promise<DeviceStats>;
  close(): Promise<void>;
}

/** Starts the device child and resolves once every device is connected and subscribed (or has failed three times). */
export async function startFleet(port: number, file: string, concurrency: number, n: number): Promise<SimulatedFleet> {
  const child: ChildProcess = startTsChild('./jobs-devices.ts', [], { BENCH_JOBS_PORT: String(port), BENCH_JOBS_DEVICES: file, BENCH_JOBS_CONCURRENCY: String(concurrency) });
  if (!child.stdout || !child.stdin) throw new Error('device child: no stdio');
  const waiting: ((s: DeviceStats) => void)[] = [];
  let lastProgress = 0;
  const connected = await new Promise<SimulatedFleet['connected']>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`device child exited (${code}) while connecting`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const m = JSON.parse(line) as { type: string; open: number; failed: number; retries: number; seconds: number; errors: string[] };
      if (m.type === 'progress' && m.seconds - lastProgress >= 5) {
        lastProgress = m.seconds;
        progress(`jobs: ${m.open.toLocaleString('en')} of ${n.toLocaleString('en')} device sessions open (${m.failed} failed, ${m.retries} retried) after ${m.seconds.toFixed(0)} s`);
      } else if (m.type === 'connected') resolve(m);
      else if (m.type === 'stats') waiting.shift()?.(m as unknown as DeviceStats);
    });
  });
  return {
    pid: child.pid ?? 0,
    connected,
    stats: (versions, arrivals) =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin?.write(`${JSON.stringify({ cmd: 'stats', versions, arrivals })}\n`);
      }),
    async close() {
      child.stdin?.end();
      await stopChild(child, 5000);
    },
  };
}
