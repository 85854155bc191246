import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { FirmwareManifest, OtaState, OtaStatus, RootKeySet } from '@bulwark/protocol';
import { FileSlotStore, type SlotStore } from './slots.js';
import { MemoryFirmwareServer } from './testing.js';
import { Updater } from './updater.js';

/**
 * Test-only: one device's real updater over real files, with the network, the clock, the
 * reboot and the health window in the test's hands. A reboot builds a new Updater from
 * the same directory (what a restarted process does) and boots it; if `healthy` is set the
 * new image then "connects and reports".
 */
export interface UpdaterRig {
  readonly dir: string;
  readonly server: MemoryFirmwareServer;
  readonly statuses: OtaStatus[];
  updater: Updater;
  now: number;
  /** null: the new image never connects (a hang); true/false: the application's health verdict. */
  healthy: boolean | null;
  reboots: number;
  /** Health-window timers waiting to fire. */
  readonly windows: (() => void)[];
  job(manifest: FirmwareManifest, artifactId?: string, jobId?: string): Promise<void>;
  /** The first status in `state` (or any of several states) of the job. */
  until(state: OtaState | readonly OtaState[], jobId?: string): Promise<OtaStatus>;
  restart(): void;
}

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function updaterRig(t: TestContext, rootFile: string, options: { now: number; factory?: { version: string; securityVersion: number }; hardwareRevision?: string; slots?: (dir: string) => SlotStore }): UpdaterRig {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-ota-'));
  t.after(() => {
    rig.updater.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const root = JSON.parse(readFileSync(rootFile, 'utf8')) as RootKeySet;
  const server = new MemoryFirmwareServer();
  const statuses: OtaStatus[] = [];
  const waiters: (() => void)[] = [];
  let jobs = 0;
  const make = () =>
    new Updater(
      { dir: join(dir, 'ota'), root, device: { model: 'gw-1', hardwareRevision: options.hardwareRevision ?? 'C' }, factory: options.factory ?? { version: '1.0.0', securityVersion: 4 }, maxTrialBoots: 3, healthWindowMs: 60_000, downloadRetries: 3 },
      {
        fetcher: server,
        slots: options.slots?.(join(dir, 'ota')) ?? new FileSlotStore(join(dir, 'ota')),
        now: () => rig.now,
        log: silent,
        retryDelayMs: () => 1,
        report: async (s) => {
          statuses.push(s);
          for (const w of waiters.splice(0)) w();
          return true;
        },
        reboot: () => {
          rig.reboots += 1;
          setImmediate(() => rig.restart());
        },
        healthCheck: () => rig.healthy === true,
        schedule: (_ms, fn) => {
          rig.windows.push(fn);
          return () => rig.windows.splice(rig.windows.indexOf(fn) >>> 0, 1);
        },
      },
    );
  const rig: UpdaterRig = {
    dir,
    server,
    statuses,
    updater: make(),
    now: options.now,
    healthy: true,
    reboots: 0,
    windows: [],
    async job(manifest, artifactId = 'fw_1', jobId = `job_${++jobs}`) {
      await rig.updater.onJob(Buffer.from(JSON.stringify({ jobId, rolloutId: 'ro_1', artifactId, url: `/v1/firmware/${artifactId}`, manifest, issuedAt: rig.now, attempt: 1 })));
    },
    until(state, jobId) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`no "${String(state)}" status; saw ${statuses.map((s) => s.state + (s.reason ? `(${s.reason})` : '')).join(' → ')}`)), 10_000);
        const check = () => {
          const wanted: readonly OtaState[] = typeof state === 'string' ? [state] : state;
          const hit = statuses.find((s) => wanted.includes(s.state) && (jobId === undefined || s.jobId === jobId));
          if (hit) {
            clearTimeout(deadline);
            resolve(hit);
          } else waiters.push(check);
        };
        check();
      });
    },
    restart() {
      rig.updater.close();
      rig.windows.splice(0);
      rig.updater = make();
      rig.updater.boot();
      if (rig.healthy !== null) void rig.updater.confirmHealthy();
    },
  };
  rig.updater.boot();
  return rig;
}
