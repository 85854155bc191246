import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { commaList, parseWindow, percent, positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { usageError } from '../errors.js';
import { bar, printFields, printJson, printTable, time } from '../output.js';

interface Progress {
  total: number;
  committed: number;
  failed: number;
  inProgress: number;
  pending: number;
}

interface Rollout {
  readonly id: string;
  readonly name: string;
  readonly state: string;
  readonly reason: string | null;
  readonly artifact: { id: string; name: string; version: string };
  readonly currentWave: number;
  readonly waveCount: number;
  readonly waves: (Progress & { wave: number })[];
  readonly totals: Progress;
  readonly history: { at: number; wave: number; state: string; actor: string; reason: string }[];
  readonly createdAt: number;
}

type Wave = { percent: number } | { count: number };

/** `1%,10%,50%,100%` (cumulative shares) or `5,50,200` (devices per wave). */
export function parseWaves(value: string): Wave[] {
  return commaList(value).map((w) => {
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(w);
    if (pct) {
      const percent = Number(pct[1]);
      if (percent <= 0 || percent > 100) throw new InvalidArgumentError(`${w}: a percent is above 0 and at most 100`);
      return { percent };
    }
    if (/^\d+$/.test(w) && Number(w) > 0) return { count: Number(w) };
    throw new InvalidArgumentError(`${w}: give a percent (10%) or a device count (50)`);
  });
}

function render(r: Rollout): void {
  console.log(`${r.name} (${r.id}): ${r.artifact.name} ${r.artifact.version}`);
  printFields([
    ['state', r.reason ? `${r.state}: ${r.reason}` : r.state],
    ['wave', `${r.currentWave + 1} of ${r.waveCount}`],
    ['created', time(r.createdAt)],
  ]);
  console.log(`  ${bar(r.totals.committed, r.totals.total)} | ${r.totals.committed}/${r.totals.total} committed | ${r.totals.failed} failed | ${r.totals.inProgress} updating`);
  printTable(
    ['wave', 'devices', 'committed', 'failed', 'updating', 'pending'],
    r.waves.map((w) => [w.wave + 1, w.total, w.committed, w.failed, w.inProgress, w.pending]),
    'No devices.',
  );
  console.log('History:');
  for (const e of r.history) console.log(`  ${time(e.at)}  wave ${e.wave + 1}  ${e.state.padEnd(9)} ${e.actor}: ${e.reason}`);
}

/** Re-reads a running rollout, moving a live bar on standard error, until it stops running. */
async function follow(first: Rollout, read: () => Promise<Rollout>, intervalMs: number, showBar: boolean): Promise<Rollout> {
  const live =
    showBar && process.stderr.isTTY ? new cliProgress.SingleBar({ stream: process.stderr, format: 'wave {wave} [{bar}] {value}/{total} committed | {failed} failed | {inProgress} updating', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  const payload = (r: Rollout) => ({ wave: `${r.currentWave + 1}/${r.waveCount}`, failed: r.totals.failed, inProgress: r.totals.inProgress });
  live?.start(first.totals.total, first.totals.committed, payload(first));
  let r = first;
  try {
    while (r.state === 'running') {
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      r = await read();
      live?.update(r.totals.committed, payload(r));
    }
  } finally {
    live?.stop();
  }
  return r;
}

/** `bulwark rollout create | list | status | pause | resume | abort`. */
export function addRolloutCommands(program: Command, env: Env): void {
  const ro = program.command('rollout').description('staged firmware rollouts: waves or canaries, gates that pause or abort, maintenance windows');

  ro.command('create')
    .description('start a rollout of published firmware to devices (only compatible ones not yet on that version)')
    .requiredOption('--firmware <id>', 'the firmware artifact id (from "bulwark firmware list")')
    .requiredOption('--name <name>', 'a name for people')
    .option('--devices <ids>', 'target: these devices, comma-separated', commaList)
    .option('--group <id>', 'target: the devices of this group now (bulwark groups list)')
    .option('--tag <tag>', 'target: devices with this tag')
    .option('--model <model>', 'target: devices of this model')
    .option('--from-version <version>', 'target: only devices running this firmware version now')
    .option('--waves <list>', 'cumulative percents (1%,10%,50%,100%) or devices per wave (5,50,200)', parseWaves)
    .option('--canary <ids>', 'devices updated first, as a wave of their own', commaList)
    .option('--min-devices <n>', 'judge gates once this many devices of a wave finished (default 10)', positiveInt(1_000_000))
    .option('--max-failure-percent <p>', 'gate: at most this share of finished devices may fail (default 5)', percent)
    .option('--max-failures <n>', 'gate: at most this many failed devices per wave', (v) => Number(v))
    .option('--min-success-percent <p>', 'gate: at least this share of a finished wave committed', percent)
    .option('--max-restart-loop-excess <p>', 'gate: updated devices in restart loops, percentage points above the rest', percent)
    .option('--max-crash-ratio <r>', 'gate: mean crash count of updated devices over that of the rest', (v) => Number(v))
    .option('--max-reconnect-ratio <r>', 'gate: mean reconnect count of updated devices over that of the rest', (v) => Number(v))
    .option('--max-silent-excess <p>', 'gate: updated devices gone silent after their update, percentage points above the rest', percent)
    .option('--max-telemetry-gap-excess <p>', 'gate: updated devices whose telemetry stopped after their update, percentage points above the rest', percent)
    .option('--silent-after <minutes>', 'with --max-silent-excess or --max-telemetry-gap-excess: unheard for this long counts as silent (default 10); a finished wave waits this long', positiveInt(10_080))
    .addOption(new Option('--on-failure <action>', 'what a failed gate does').choices(['pause', 'abort']).default('pause'))
    .option('--window <HH:MM-HH:MM>', 'notify devices only inside this daily UTC window', parseWindow)
    .option('--max-retries <n>', 'retries per device after a failed attempt (default: ota.defaultMaxRetries)', (v) => Number(v))
    .option('--json', 'print the rollout as JSON')
    .action(
      async (o: {
        firmware: string;
        name: string;
        devices?: string[];
        group?: string;
        tag?: string;
        model?: string;
        fromVersion?: string;
        waves?: Wave[];
        canary?: string[];
        minDevices?: number;
        maxFailurePercent?: number;
        maxFailures?: number;
        minSuccessPercent?: number;
        maxRestartLoopExcess?: number;
        maxCrashRatio?: number;
        maxReconnectRatio?: number;
        maxSilentExcess?: number;
        maxTelemetryGapExcess?: number;
        silentAfter?: number;
        onFailure: 'pause' | 'abort';
        window?: { startMinute: number; endMinute: number };
        maxRetries?: number;
        json?: boolean;
      }) => {
        if (!o.devices && o.group === undefined && o.tag === undefined && o.model === undefined && o.fromVersion === undefined) throw usageError('name the target: --devices, --group, --tag, --model or --from-version');
        const defined = <T extends object>(x: T) => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined));
        const body = {
          name: o.name,
          artifactId: o.firmware,
          target: defined({ deviceIds: o.devices, group: o.group, tag: o.tag, model: o.model, firmwareVersion: o.fromVersion }),
          strategy: defined({ canary: o.canary, waves: o.waves ?? (o.canary ? [{ percent: 100 }] : [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }]) }),
          gates: defined({
            minDevices: o.minDevices ?? 10,
            maxFailurePercent: o.maxFailurePercent ?? 5,
            maxFailures: o.maxFailures,
            minSuccessPercent: o.minSuccessPercent,
            maxRestartLoopExcessPercent: o.maxRestartLoopExcess,
            maxCrashRatio: o.maxCrashRatio,
            maxReconnectRatio: o.maxReconnectRatio,
            maxSilentExcessPercent: o.maxSilentExcess,
            maxTelemetryGapExcessPercent: o.maxTelemetryGapExcess,
            silentAfterMs: o.silentAfter === undefined ? undefined : o.silentAfter * 60_000,
            onFailure: o.onFailure,
          }),
          ...defined({ window: o.window, maxRetries: o.maxRetries }),
        };
        const r = await openSession(env).call<Rollout>('POST', '/api/v1/rollouts', { body });
        if (o.json) return printJson(r);
        render(r);
      },
    );

  ro.command('list')
    .description('rollouts, newest first')
    .option('--json', 'print a JSON array')
    .action(async (o: { json?: boolean }) => {
      const list = await openSession(env).call<Rollout[]>('GET', '/api/v1/rollouts');
      if (o.json) return printJson(list);
      printTable(
        ['id', 'name', 'firmware', 'state', 'wave', 'committed', 'failed', 'reason'],
        list.map((r) => [r.id, r.name, `${r.artifact.name} ${r.artifact.version}`, r.state, `${r.currentWave + 1}/${r.waveCount}`, `${r.totals.committed}/${r.totals.total}`, r.totals.failed, r.reason]),
        'No rollouts.',
      );
    });

  ro.command('status')
    .description('progress of a rollout (a bar, each wave, and the reason for every pause)')
    .argument('<id>', 'rollout id')
    .option('--watch', 'follow a running rollout, redrawing the bar every --interval seconds, until it pauses, aborts or completes')
    .option('--interval <s>', 'seconds between reads with --watch (default 2)', positiveInt(3600))
    .option('--json', 'print the rollout as JSON (with --watch: once it stops running)')
    .action(async (id: string, o: { watch?: boolean; interval?: number; json?: boolean }) => {
      const session = openSession(env);
      const read = () => session.call<Rollout>('GET', `/api/v1/rollouts/${encodeURIComponent(id)}`);
      let r = await read();
      if (o.watch && r.state === 'running') r = await follow(r, read, (o.interval ?? 2) * 1000, !o.json);
      if (o.json) return printJson(r);
      render(r);
    });

  const verbs = { pause: 'stop notifying devices until resumed (devices already updating finish)', resume: 'continue a paused rollout', abort: 'stop for good: no further device is notified' } as const;
  for (const [verb, description] of Object.entries(verbs) as [keyof typeof verbs, string][]) {
    ro.command(verb)
      .description(description)
      .argument('<id>', 'rollout id')
      .requiredOption('--reason <text>', 'why (kept in the rollout history and the audit log)')
      .option('--json', 'print the rollout as JSON')
      .action(async (id: string, o: { reason: string; json?: boolean }) => {
        const r = await openSession(env).call<Rollout>('POST', `/api/v1/rollouts/${encodeURIComponent(id)}/${verb}`, { body: { reason: o.reason } });
        if (o.json) return printJson(r);
        console.log(`Rollout ${r.id} is ${r.state}${r.reason ? `: ${r.reason}` : ''}.`);
      });
  }
}
