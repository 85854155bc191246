import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type OtaJob, type OtaStatus, OTA_TERMINAL_STATES, type RootKeySet } from '@bulwark/protocol';
import type { DeviceAnswer, SimFleet } from '@bulwark/server/testing';
import { FileSlotStore } from './slots.js';
import { MemoryFirmwareServer } from './testing.js';
import { Updater } from './updater.js';

/**
 * Test-only: devices for the platform's simulated fleet that run the agent's real update
 * code (verification, Range download, A/B slots on disk, try-once boot, commit or revert)
 * in-process, one directory each, on the fleet's clock. A reboot builds a new Updater from
 * the device's directory and boots it; the new image then connects and reports, and the
 * application's health check says what `failHealth` says.
 */
export interface AgentFleet {
  readonly answer: DeviceAnswer;
  readonly updaters: Map<string, Updater>;
  /** Devices whose new image fails its health check (they revert). */
  readonly failHealth: Set<string>;
  /** Devices that receive a corrupted image (they refuse it). */
  readonly corrupt: Set<string>;
  readonly server: MemoryFirmwareServer;
}

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function agentFleet(dir: string, rootFile: string, image: Buffer, sha256: string): AgentFleet {
  const root = JSON.parse(readFileSync(rootFile, 'utf8')) as RootKeySet;
  const server = new MemoryFirmwareServer();
  const bad = new MemoryFirmwareServer();
  const damaged = Buffer.from(image);
  damaged[damaged.length >> 1] = damaged[damaged.length >> 1]! ^ 0xff;
  const updaters = new Map<string, Updater>();
  const failHealth = new Set<string>();
  const corrupt = new Set<string>();
  const finished = new Map<string, () => void>();

  const build = (fleet: SimFleet, id: string): Updater => {
    const home = join(dir, id);
    mkdirSync(home, { recursive: true });
    const u = new Updater(
      { dir: home, root, device: { model: 'gw-1', hardwareRevision: 'C' }, factory: { version: '1.0.0', securityVersion: 4 }, maxTrialBoots: 3, healthWindowMs: 60_000, downloadRetries: 2 },
      {
        fetcher: { get: (path, from) => (corrupt.has(id) ? bad : server).get(path, from) },
        slots: new FileSlotStore(home),
        now: () => fleet.clock.now(),
        log: silent,
        retryDelayMs: () => 1,
        schedule: () => () => undefined,
        healthCheck: () => !failHealth.has(id),
        report: async (s: OtaStatus) => {
          await fleet.rollouts.onStatus(id, s);
          if ((OTA_TERMINAL_STATES as readonly string[]).includes(s.state)) finished.get(s.jobId)?.();
          return true;
        },
        reboot: () => {
          setImmediate(() => {
            u.close();
            const next = build(fleet, id);
            next.boot();
            void next.confirmHealthy();
          });
        },
      },
    );
    updaters.set(id, u);
    return u;
  };

  const answer: DeviceAnswer = async (fleet, id, message) => {
    let u = updaters.get(id);
    if (!u) {
      u = build(fleet, id);
      u.boot();
    }
    if ('cancel' in message) return u.onJob(Buffer.from(JSON.stringify(message)));
    const job: OtaJob = message;
    server.put(job.artifactId, image, sha256);
    bad.put(job.artifactId, damaged, sha256);
    const done = new Promise<void>((resolve) => finished.set(job.jobId, resolve));
    await u.onJob(Buffer.from(JSON.stringify(job)));
    // A job it does not take up (cancelled before it came, a repeat) ends here.
    if (u.state.job?.job.jobId === job.jobId) await done;
    finished.delete(job.jobId);
  };
  return { answer, updaters, failHealth, corrupt, server };
}
