import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { type FirmwareKit, firmwareKit, sha256, tempDir, uploadFirmware } from '@bulwark/server/testing';
import { type Platform, agentConfig, startPlatform, until } from './platform.js';

/** Test-only: the real platform with OTA on, a signed release uploaded, and devices that run in their own processes. */

const DRIVER = new URL('./ota-driver.ts', import.meta.url).pathname;
export const DEVICE = { model: 'gw-1', hardwareRevision: 'C', firmwareVersion: '1.0.0', securityVersion: 4 } as const;

export interface OtaPlatform extends Platform {
  readonly kit: FirmwareKit;
  /** Uploads a signed release of `image`; resolves with the artifact id. */
  publish(image: Buffer, over?: Parameters<FirmwareKit['release']>[1]): Promise<string>;
  /** A device registered with DEVICE's inventory and an agent config file for it. */
  device(id: string): Promise<{ configFile: string; dataDir: string }>;
  /** A one-wave rollout of `artifactId` to these devices; resolves with its id. */
  rollout(artifactId: string, deviceIds: string[], gates?: Record<string, unknown>): Promise<string>;
  /** The rollout's record of one device once it reached a terminal state. */
  settled(rolloutId: string, deviceId: string, timeoutMs?: number): Promise<{ state: string; reason: string | null }>;
}

export async function startOtaPlatform(t: TestContext): Promise<OtaPlatform> {
  const kit = firmwareKit(tempDir(t));
  const p = await startPlatform(t, { ota: { rootKeysFile: kit.rootFile, tickIntervalMs: 200, deviceTimeoutMs: 120_000 } });
  const rolloutDevice = async (rolloutId: string, deviceId: string) => {
    const res = await p.s.api('GET', `/api/v1/rollouts/${rolloutId}/devices?limit=1000`, { token: p.admin });
    if (res.status !== 200) throw new Error(res.text);
    return (res.body as { deviceId: string; state: string; reason: string | null }[]).find((d) => d.deviceId === deviceId);
  };
  return {
    ...p,
    kit,
    async publish(image, over) {
      const res = await uploadFirmware(p.s, p.admin, kit.release(image, over), image);
      if (res.status !== 200) throw new Error(res.text);
      return res.body.id as string;
    },
    async device(id) {
      await p.claim(id, { model: DEVICE.model, hardwareRevision: DEVICE.hardwareRevision, firmwareVersion: DEVICE.firmwareVersion });
      const base = await agentConfig(t, p, id);
      const config = {
        ...base,
        ota: {
          rootKeysFile: kit.rootFile,
          downloadUrl: `https://127.0.0.1:${p.s.server.deviceHttpPort}`,
          model: DEVICE.model,
          hardwareRevision: DEVICE.hardwareRevision,
          factoryVersion: DEVICE.firmwareVersion,
          factorySecurityVersion: DEVICE.securityVersion,
          healthWindowMs: 30_000,
        },
      };
      const configFile = join(config.dataDir, 'agent.json');
      writeFileSync(configFile, JSON.stringify(config));
      return { configFile, dataDir: config.dataDir };
    },
    async rollout(artifactId, deviceIds, gates = {}) {
      const res = await p.s.api('POST', '/api/v1/rollouts', {
        token: p.admin,
        body: { name: `to ${deviceIds.join(',')}`.slice(0, 60), artifactId, target: { deviceIds }, strategy: { waves: [{ percent: 100 }] }, gates: { minDevices: 1, onFailure: 'pause', ...gates } },
      });
      if (res.status !== 201) throw new Error(res.text);
      return res.body.id as string;
    },
    async settled(rolloutId, deviceId, timeoutMs = 90_000) {
      let out: { state: string; reason: string | null } | undefined;
      await until(
        `${deviceId} finishes its update`,
        async () => {
          const d = await rolloutDevice(rolloutId, deviceId);
          if (d && ['committed', 'rolled-back', 'failed'].includes(d.state)) out = d;
          return out !== undefined;
        },
        timeoutMs,
      );
      return out!;
    },
  };
}

export const randomImage = (size: number, head = '') => Buffer.concat([Buffer.from(head, 'latin1'), randomBytes(size - head.length)]);
export { sha256 };

/**
 * A device process that is started again whenever it reboots (exit 75) or loses power
 * (SIGKILL), like a device with a supervisor; `stop` ends it for good.
 */
export class DeviceProcess {
  readonly lines: string[] = [];
  starts = 0;
  powerCuts = 0;
  /** The slot the simulated bootloader started, per start (with `bootloader`). */
  readonly booted: string[] = [];
  #child: ChildProcess | undefined;
  #stopped = false;

  /** `bootloader`: play a U-Boot with bootcount at each start (bootlimit 2, then the other slot) over `<dataDir>/bootenv.json`. */
  constructor(
    private readonly configFile: string,
    private readonly env: Record<string, string> = {},
    private readonly bootloader?: { dataDir: string },
  ) {}

  start(): void {
    this.starts += 1;
    const boot = this.bootloader ? { BOOTED_SLOT: this.#bootloaderPicks(this.bootloader.dataDir), BOOT_ID: `boot-${this.starts}` } : {};
    const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, this.configFile], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...this.env, ...boot } });
    this.#child = child;
    createInterface({ input: child.stdout }).on('line', (l) => this.lines.push(l));
    child.once('exit', (code, signal) => {
      if (this.#stopped) return;
      if (signal === 'SIGKILL') this.powerCuts += 1;
      if (code === 75 || signal === 'SIGKILL') this.start();
      else this.lines.push(`exited ${code ?? signal}`);
    });
  }

  /** U-Boot's bootcount: a slot on trial is booted at most twice, then the bootloader falls back to the other one by itself. */
  #bootloaderPicks(dataDir: string): string {
    const file = join(dataDir, 'bootenv.json');
    const env = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { bootPart: string; upgradeAvailable: boolean; bootcount: number }) : { bootPart: 'a', upgradeAvailable: false, bootcount: 0 };
    if (env.upgradeAvailable) {
      env.bootcount += 1;
      if (env.bootcount > 2) Object.assign(env, { bootPart: env.bootPart === 'a' ? 'b' : 'a', upgradeAvailable: false, bootcount: 0 });
      writeFileSync(file, JSON.stringify(env));
    }
    this.booted.push(env.bootPart);
    return env.bootPart;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }
}
