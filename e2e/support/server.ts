import type { TestContext } from 'node:test';
import { type CliProcess, type SpawnOptions, spawnCli } from './cli.js';

/** A `bulwark start` child on port 0, once its banner is complete. */
export interface StartedServer {
  readonly process: CliProcess;
  readonly url: string;
  /** Everything printed up to the end of the banner. */
  readonly banner: string;
  /** The admin key shown on the first start, if the banner holds one. */
  readonly adminKey: string | undefined;
}

export const KEY_PATTERN = /bwk\.[a-z0-9_]{4,64}\.[A-Za-z0-9_-]{32,128}/;
const LISTENING = /^Bulwark \S+ is listening on (http:\/\/127\.0\.0\.1:(\d+))$/m;
/** The banner's last line (STOP_HINT in apps/bulwark/src/commands/banner.ts). */
const BANNER_END = /^Stop with Ctrl\+C/m;

export async function startServer(t: TestContext, dataDir: string, options: SpawnOptions & { args?: readonly string[] } = {}): Promise<StartedServer> {
  const proc = spawnCli(t, ['start', '--data', dataDir, '--http-port', '0', '--log-level', 'warn', ...(options.args ?? [])], options);
  const listening = await proc.waitFor(LISTENING);
  await proc.waitFor(BANNER_END);
  const url = listening[1];
  if (url === undefined || listening[2] === '0') throw new Error(`no real URL in the banner:\n${proc.stdout}`);
  return { process: proc, url, banner: proc.stdout, adminKey: KEY_PATTERN.exec(proc.stdout)?.[0] };
}
