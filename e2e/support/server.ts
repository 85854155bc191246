import { readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { type CliProcess, type SpawnOptions, spawnCli } from './cli.js';

/** A `bulwark start` child on port 0, once its banner is complete. */
export interface StartedServer {
  readonly process: CliProcess;
  readonly url: string;
  /** Everything printed up to the end of the banner. */
  readonly banner: string;
  /** The file the first start wrote the admin key to, as the banner names it (undefined on a later start). */
  readonly adminKeyFile: string | undefined;
  /** The admin key read from that file (the banner never holds the key itself). */
  readonly adminKey: string | undefined;
  /** The MQTT gateway's port, from the banner. */
  readonly mqttPort: number | undefined;
}

export const KEY_PATTERN = /bwk\.[a-z0-9_]{4,64}\.[A-Za-z0-9_-]{32,128}/;
const LISTENING = /^Bulwark \S+ is listening on (https?:\/\/127\.0\.0\.1:(\d+))$/m;
/** The banner's line naming the admin key file (apps/bulwark/src/commands/banner.ts). */
export const ADMIN_KEY_FILE_LINE = /The admin API key is in (\S+)/;
const MQTT = /^MQTT \(mutual TLS\) on mqtts:\/\/127\.0\.0\.1:(\d+)$/m;
/** The banner's last line (STOP_HINT in apps/bulwark/src/commands/banner.ts). */
const BANNER_END = /^Stop with Ctrl\+C/m;

/**
 * Both listeners on free ports: the MQTT gateway's default (0.0.0.0:8883) may be taken on a
 * developer's machine, and test files run side by side.
 */
export async function startServer(t: TestContext, dataDir: string, options: SpawnOptions & { args?: readonly string[] } = {}): Promise<StartedServer> {
  const args = ['start', '--data', dataDir, '--http-port', '0', '--mqtt-port', '0', '--mqtt-host', '127.0.0.1', '--device-http-port', '0', '--device-http-host', '127.0.0.1', '--log-level', 'warn', ...(options.args ?? [])];
  const proc = spawnCli(t, args, options);
  const listening = await proc.waitFor(LISTENING);
  await proc.waitFor(BANNER_END);
  const url = listening[1];
  if (url === undefined || listening[2] === '0') throw new Error(`no real URL in the banner:\n${proc.stdout}`);
  const mqtt = MQTT.exec(proc.stdout)?.[1];
  const adminKeyFile = ADMIN_KEY_FILE_LINE.exec(proc.stdout)?.[1];
  const adminKey = adminKeyFile === undefined ? undefined : readFileSync(adminKeyFile, 'utf8').trim();
  return { process: proc, url, banner: proc.stdout, adminKeyFile, adminKey, mqttPort: mqtt === undefined ? undefined : Number(mqtt) };
}
