import type { Command } from 'commander';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError } from '../errors.js';
import { printJson } from '../output.js';

interface ReplayJob {
  id: string;
  state: 'running' | 'done' | 'failed';
  read: number;
  inserted: number;
  repeats: number;
  error: string | null;
}

interface ReplayOptions {
  since: string;
  until: string;
  device?: string;
  schema?: string;
  wait: boolean;
  json?: boolean;
}

const POLL_MS = 1_000;

/** `bulwark telemetry replay`: rebuild or backfill the store from the telemetry stream (cluster mode). */
export function addReplayCommand(telemetry: Command, env: Env): void {
  telemetry
    .command('replay')
    .description('cluster mode: rebuild or backfill the store from the telemetry stream over a range of receive times (after restoring an older backup); readings the store has are skipped. Waits and shows progress unless --no-wait')
    .requiredOption('--since <time>', 'start of the range of receive times, inclusive: ISO 8601 or epoch ms')
    .requiredOption('--until <time>', 'end of the range, exclusive')
    .option('--device <id>', "only this device's readings")
    .option('--schema <schema>', 'only readings of this schema (name@version)')
    .option('--no-wait', 'start the replay and print its id without waiting for it')
    .option('--json', 'print the replay job as JSON')
    .action(async (opts: ReplayOptions) => {
      const session = openSession(env);
      let job = await session.call<ReplayJob>('POST', '/api/v1/telemetry/replay', { body: { since: opts.since, until: opts.until, device: opts.device, schema: opts.schema } });
      const tty = process.stderr.isTTY === true;
      while (opts.wait && job.state === 'running') {
        if (tty) process.stderr.write(`\rreplay ${job.id}: ${job.read} read, ${job.inserted} written, ${job.repeats} already stored`);
        await new Promise((r) => setTimeout(r, POLL_MS));
        job = await session.call<ReplayJob>('GET', `/api/v1/telemetry/replay/${job.id}`);
      }
      if (tty && opts.wait) process.stderr.write('\r\x1b[K');
      if (opts.json) printJson(job);
      else if (job.state === 'running') process.stdout.write(`Replay ${job.id} started on ${session.url}; follow it with GET /api/v1/telemetry/replay/${job.id} on that node.\n`);
      else process.stdout.write(`Replay ${job.id} ${job.state}: ${job.read} readings read from the stream, ${job.inserted} written to the store, ${job.repeats} already there.\n`);
      if (job.state === 'failed') throw new CliError('BULWARK_CLI_JOB_FAILED', `replay ${job.id} failed: ${job.error ?? 'unknown error'}`);
    });
}
