import type { RunResult } from './run.js';
import { lineChart } from './svg.js';

/** A target of the scenario (or an invariant every run must hold), met or not, with what was measured. */
export interface Verdict {
  readonly name: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
}

export interface Figures {
  readonly deliveredPercent: number;
  /** Sent readings neither stored, nor still queued, nor dropped by a full queue: lost after the device handed them on. */
  readonly unaccounted: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number } | null;
  readonly commandsAnsweredPercent: number | null;
  readonly rssPerDeviceBytes: number;
}

const pct = (sorted: Float64Array, q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

export function figures(r: RunResult): Figures {
  return {
    deliveredPercent: r.sent === 0 ? 100 : (r.stored / r.sent) * 100,
    unaccounted: Math.max(0, r.sent - r.stored - r.queuedAtEnd - r.dropped),
    latencyMs: r.latencies.length === 0 ? null : { p50: pct(r.latencies, 0.5), p95: pct(r.latencies, 0.95), p99: pct(r.latencies, 0.99), max: r.latencies[r.latencies.length - 1] as number },
    commandsAnsweredPercent: r.commands.issued === 0 ? null : (r.commands.succeeded / r.commands.issued) * 100,
    rssPerDeviceBytes: Math.round(r.resources.peakRssBytes / r.scenario.devices),
  };
}

/** The scenario's targets and the invariants of every run: nothing stored twice, nothing stored that was not sent. */
export function verdicts(r: RunResult, f: Figures): Verdict[] {
  const t = r.scenario.targets;
  const out: Verdict[] = [
    { name: 'stored once', target: '0 readings stored twice', measured: String(r.storedTwice), met: r.storedTwice === 0 },
    { name: 'nothing foreign', target: '0 stored readings the simulator did not send', measured: String(r.strangers), met: r.strangers === 0 },
    { name: 'actions done', target: 'every action of the scenario accepted by the platform', measured: r.actionErrors.length === 0 ? 'all' : r.actionErrors.join('; '), met: r.actionErrors.length === 0 },
  ];
  if (t.deliveredPercent !== null) out.push({ name: 'delivered', target: `≥ ${t.deliveredPercent} %`, measured: `${round(f.deliveredPercent, 4)} % (${r.stored}/${r.sent})`, met: f.deliveredPercent >= t.deliveredPercent });
  if (t.latencyP99Ms !== null) out.push({ name: 'latency p99', target: `≤ ${t.latencyP99Ms} ms`, measured: f.latencyMs ? `${f.latencyMs.p99} ms` : 'no readings', met: f.latencyMs !== null && f.latencyMs.p99 <= t.latencyP99Ms });
  if (t.commandsAnsweredPercent !== null) {
    out.push({
      name: 'commands answered',
      target: `≥ ${t.commandsAnsweredPercent} %`,
      measured: f.commandsAnsweredPercent === null ? 'none issued' : `${round(f.commandsAnsweredPercent, 2)} %`,
      met: f.commandsAnsweredPercent !== null && f.commandsAnsweredPercent >= t.commandsAnsweredPercent,
    });
  }
  return out;
}

/** The one-line verdict: PASS when every target and invariant holds. */
export function verdictLine(v: readonly Verdict[]): string {
  const failed = v.filter((x) => !x.met);
  return failed.length === 0 ? `PASS: ${v.map((x) => `${x.name} ${x.measured}`).join('; ')}` : `FAIL: ${failed.map((x) => `${x.name} ${x.measured} (target ${x.target})`).join('; ')}`;
}

/** The report as JSON: the figures, the verdicts and the timeline (latencies as percentiles only). */
export function reportJson(r: RunResult): Record<string, unknown> {
  const f = figures(r);
  const { latencies: _l, scenario, ...rest } = r;
  return { scenario: scenario.name, devices: scenario.devices, ...rest, figures: f, verdicts: verdicts(r, f) };
}

export function reportMarkdown(r: RunResult, svgName: string, command: string): string {
  const f = figures(r);
  const v = verdicts(r, f);
  const s = r.scenario;
  const mb = (b: number) => `${round(b / 1024 / 1024, 1)} MiB`;
  const lines = [
    `# Simulation ${s.name}: ${s.devices} devices, ${s.durationMs / 1000} s`,
    '',
    `**${verdictLine(v)}**`,
    '',
    `Run ${r.runId}, ${new Date(r.startedAt).toISOString()}. Command: \`${command}\``,
    '',
    '| target | measured | |',
    '|---|---|---|',
    ...v.map((x) => `| ${x.name} ${x.target} | ${x.measured} | ${x.met ? 'met' : '**not met**'} |`),
    '',
    '## Delivery',
    '',
    '| sent | acknowledged (all messages) | stored | still queued | dropped by full queues | unaccounted | misbehaving sent | platform duplicates | sequence gaps |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${r.sent} | ${r.acked} | ${r.stored} | ${r.queuedAtEnd} | ${r.dropped} | ${f.unaccounted} | ${r.badSent} | ${r.platform.metricsRead ? r.platform.duplicates : 'n/a'} | ${r.gaps} |`,
    '',
    f.latencyMs
      ? `Sent → received by the platform: p50 ${f.latencyMs.p50} ms, p95 ${f.latencyMs.p95} ms, p99 ${f.latencyMs.p99} ms, max ${f.latencyMs.max} ms (same machine clock; a reading queued while offline counts its time in the queue).`
      : 'No reading was stored.',
    '',
    `Platform duplicates: retries the platform received again and stored once (\`bulwark_ingest_messages_total{outcome="duplicate"}\`, platform-wide${r.platform.metricsRead ? '' : '; /metrics could not be read from here'}). Dead letters counted by the platform: ${r.platform.deadLetters}.`,
    '',
    '## Operations',
    '',
    ...(r.rollout
      ? [
          `Rollout ${r.rollout.id}: ${r.rollout.state}${r.rollout.reason ? ` (${r.rollout.reason})` : ''}; ${Object.entries(r.rollout.totals)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')}; ${r.rollout.failHealth} devices were made to fail the new image's health check; ${r.reboots} reboots into another slot.`,
          '',
        ]
      : []),
    `Commands issued ${r.commands.issued}, succeeded ${r.commands.succeeded}${
      Object.keys(r.commands.other).length
        ? ` (${Object.entries(r.commands.other)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')})`
        : ''
    }; twin changes ${r.twinChanges}, applied by devices ${r.configsApplied}; agent restarts (crash loops) ${r.restarts}.`,
    '',
    '## Connections over time',
    '',
    `![connections and readings over time](${svgName})`,
    '',
    `The devices came online a window at a time (at most 100 handshakes at once per process); readings started ${round((r.readingsFrom - r.connectFrom) / 1000, 1)} s after the first connection.`,
    '',
    r.proxy.used
      ? `Impairment proxy: ${r.proxy.accepted} connections accepted, ${r.proxy.resets} reset, ${r.proxy.flapDrops} dropped by flapping${r.proxy.namespace ? '; packet loss and bandwidth caps made in a network namespace (nftables, tbf)' : ''}.`
      : 'No impairment: devices connected to the platform directly.',
    '',
    '| phase | from | latency ± jitter | resets /min/device | partition | flapping | loss | bandwidth |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...r.scenario.phases.map((p) => {
      const i = p.impair;
      return `| ${p.name} | ${p.atMs / 1000} s | ${i.latencyMs} ± ${i.jitterMs} ms | ${i.resetsPerMinute} | ${Math.round(i.partition * 100)} % | ${i.flapping ? `${i.flapping.downMs / 1000} s down every ${i.flapping.everyMs / 1000} s` : '-'} | ${i.lossPercent} % | ${i.bandwidthKbit === null ? '-' : `${i.bandwidthKbit} kbit/s`} |`;
    }),
    ...(r.notMade.length ? ['', 'Not made in this run:', ...r.notMade.map((n) => `- ${n}`)] : []),
    '',
    '## The simulator itself',
    '',
    `${r.workers === 1 ? 'One process' : `${r.workers} processes`}: CPU ${round(r.resources.cpuSeconds, 1)} s; peak RSS ${mb(r.resources.peakRssBytes)} (${round(f.rssPerDeviceBytes / 1024, 1)} KiB per device, the process's fixed part included); JS heap ${round(r.resources.heapPerDeviceBytes / 1024, 1)} KiB per device at the end.`,
    '',
  ];
  return lines.join('\n');
}

export function reportSvg(r: RunResult): string {
  const t = r.timeline;
  const perSecond = (pick: (x: (typeof t)[number]) => number) => t.map((x, i) => ({ x: x.t, y: i === 0 ? 0 : Math.max(0, pick(x) - pick(t[i - 1] as (typeof t)[number])) }));
  return lineChart(`${r.scenario.name}: ${r.scenario.devices} devices`, 'seconds from the first connection', [
    { name: 'devices online', points: t.map((x) => ({ x: x.t, y: x.online })) },
    { name: 'reconnects /s', points: perSecond((x) => x.reconnects) },
    { name: 'acknowledged /s', points: perSecond((x) => x.acked) },
    { name: 'queued on devices', points: t.map((x) => ({ x: x.t, y: x.queued })) },
  ]);
}
