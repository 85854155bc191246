import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '@bulwark/agent';
import type { Session } from '../client.js';
import { deviceId, fleetChoices } from './fleet.js';
import { SendTimes } from './send-times.js';
import { EMPTY_SNAPSHOT, type FleetPart, LocalPart, type PartSpec, type Snapshot, WorkerPart, keepHeapTight } from './parts.js';
import { impairment } from './impairment.js';
import { onboardFleet } from './onboard.js';
import { PlatformApi } from './platform.js';
import { type Action, NO_IMPAIRMENT, type Scenario } from './scenario.js';
import { chooseShare } from './values.js';

/** Scopes the simulator's credential needs: onboarding, schemas, read-back, commands and twin changes. */
export const NEEDED_SCOPES = ['devices:write', 'schemas:read', 'schemas:write', 'telemetry:read', 'devices:command', 'twin:write'] as const;

/** What one run measured, for the report. */
export interface RunResult {
  readonly scenario: Scenario;
  readonly runId: string;
  readonly workers: number;
  readonly startedAt: number;
  /** When the devices began to connect (the timeline's zero); readings began at readingsFrom, once all were started. */
  readonly connectFrom: number;
  readonly readingsFrom: number;
  readonly readingsUntil: number;
  readonly sent: number;
  readonly badSent: number;
  readonly sendErrors: number;
  readonly acked: number;
  readonly dropped: number;
  readonly stored: number;
  /** Stored readings the simulator never sent (none expected). */
  readonly strangers: number;
  /** Stored twice under one message id (none expected: the platform stores once). */
  readonly storedTwice: number;
  readonly queuedAtEnd: number;
  /** Sent → received by the platform, ms, each stored reading. */
  readonly latencies: Float64Array;
  /** Per-device sequence holes among stored readings (per boot). */
  readonly gaps: number;
  readonly platform: { readonly duplicates: number; readonly deadLetters: number; readonly metricsRead: boolean };
  readonly commands: { readonly issued: number; readonly succeeded: number; readonly other: Readonly<Record<string, number>> };
  readonly twinChanges: number;
  readonly configsApplied: number;
  readonly restarts: number;
  /** Reboots into another firmware slot (updates and reverts). */
  readonly reboots: number;
  /** The scenario's rollout, as the platform reported it at the end. */
  readonly rollout: { readonly id: string; readonly state: string; readonly reason: string | null; readonly totals: Readonly<Record<string, number>>; readonly failHealth: number } | null;
  /** One sample a second from the start of the readings. */
  readonly timeline: readonly { t: number; online: number; reconnects: number; acked: number; sent: number; queued: number; rssBytes: number }[];
  readonly proxy: { readonly used: boolean; readonly namespace: boolean; readonly accepted: number; readonly resets: number; readonly flapDrops: number };
  /** Actions the platform refused or that failed, with why. */
  readonly actionErrors: readonly string[];
  /** Impairments asked for that this run could not make, with why. */
  readonly notMade: readonly string[];
  readonly resources: { readonly cpuSeconds: number; readonly peakRssBytes: number; readonly heapPerDeviceBytes: number };
}

export interface RunOptions {
  readonly scenario: Scenario;
  readonly session: Session;
  /** The platform's device MQTT endpoint, `mqtts://host:port`. */
  readonly mqttUrl: string;
  /** The platform's device HTTPS listener (firmware downloads), `https://host:port`. */
  readonly deviceHttpsUrl?: string | undefined;
  /** One line per step and a progress line every few seconds. */
  readonly say: (line: string) => void;
  /** The agents' log lines (info and up), each with its device id. */
  readonly agentLog?: ((deviceId: string, line: string) => void) | undefined;
  /** Processes that run the devices (this one included): 1 runs them all here. */
  readonly workers?: number | undefined;
}

const DUP = 'bulwark_ingest_messages_total{transport="mqtt",outcome="duplicate"}';
const sum = (m: Map<string, number>, prefix: string) => [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

/** Checks what can be checked before anything starts: the credential and its scopes, and the MQTT URL. Every problem is listed. */
export async function preflight(o: Pick<RunOptions, 'session' | 'mqttUrl'> & { scenario?: Scenario }): Promise<string[]> {
  const problems: string[] = [];
  if (!/^mqtts:\/\/[^/:]+:\d+$/.test(o.mqttUrl)) problems.push(`--mqtt ${o.mqttUrl}: must be mqtts://host:port`);
  const rollout = o.scenario?.actions.some((a) => a.kind === 'rollout') === true;
  if (o.scenario?.firmware && !existsSync(o.scenario.firmware.rootKeysFile)) problems.push(`firmware.rootKeys: ${o.scenario.firmware.rootKeysFile} cannot be read`);
  try {
    const me = await o.session.call<{ scopes: string[] }>('GET', '/api/v1/auth/whoami');
    for (const s of [...NEEDED_SCOPES, ...(rollout ? ['rollouts:write'] : [])]) if (!me.scopes.includes('*') && !me.scopes.includes(s)) problems.push(`the credential lacks the ${s} scope`);
  } catch (err) {
    problems.push(`cannot authenticate to ${o.session.url}: ${(err as Error).message}`);
  }
  return problems;
}

/** Runs the scenario against the platform and measures it; cleans up its agents, proxy and files. */
export async function runSimulation(o: RunOptions): Promise<RunResult> {
  const { scenario: s, say } = o;
  // This process makes the keys and runs the first part of the fleet.
  keepHeapTight();
  const api = new PlatformApi(o.session);
  const runId = Date.now().toString(36);
  const cpu0 = process.cpuUsage();
  const cpuAtStart = (cpu0.user + cpu0.system) / 1e6;
  const startedAt = Date.now();
  for (const p of s.profiles) say(`schema ${p.schema}: ${await api.ensureSchema(p)}`);

  const identities = await onboardFleet(api, s, runId, say);
  const ids = [...identities.keys()];

  const target = new URL(o.mqttUrl.replace(/^mqtts:/, 'https:'));
  const { proxy, ns, nsPorts, notMade } = await impairment(s, { host: target.hostname, port: Number(target.port) }, runId, say);
  const urlOf = (index: number): string => {
    if (!proxy) return o.mqttUrl;
    return ns ? `mqtts://${ns.nsIp}:${nsPorts[proxy.laneOf(index, s.devices)]}` : `mqtts://127.0.0.1:${proxy.portFor(index, s.devices)}`;
  };
  const dir = mkdtempSync(join(tmpdir(), `bulwark-sim-${runId}-`));
  const commandNames = [...new Set(s.actions.flatMap((a) => (a.kind === 'command' ? [a.name] : [])))];
  // The devices in `workers` consecutive slices; one worker runs in this process.
  const workers = Math.max(1, Math.min(o.workers ?? 1, s.devices));
  const parts: FleetPart[] = [];
  const metricsBefore = await api.metrics();
  const timers: NodeJS.Timeout[] = [];
  const timeline: RunResult['timeline'][number][] = [];
  const issued: { deviceId: string; id: string }[] = [];
  let twinChanges = 0;
  let rolloutId: string | undefined;
  const actionErrors: string[] = [];
  let peakRss = 0;
  try {
    for (let w = 0; w < workers; w += 1) {
      const from = Math.floor((w * s.devices) / workers);
      const to = Math.floor(((w + 1) * s.devices) / workers);
      const spec: PartSpec = {
        scenario: s,
        runId,
        from,
        identities: ids.slice(from, to).map((id) => identities.get(id) as Identity),
        urls: Array.from({ length: to - from }, (_, i) => urlOf(from + i)),
        servername: target.hostname,
        commandNames,
        dir,
        agentLog: o.agentLog !== undefined,
        ...(s.firmware ? { firmware: { spec: s.firmware, downloadUrl: o.deviceHttpsUrl ?? s.server.deviceHttps ?? `https://${target.hostname}:8443` } } : {}),
      };
      parts.push(w === 0 ? new LocalPart(spec, o.agentLog) : await WorkerPart.start(spec, o.agentLog));
    }
    if (workers > 1) say(`${workers} processes run the devices (${parts.length - 1} workers and this one)`);
    identities.clear();
    const total = () => combine(parts.map((p) => p.snapshot));
    const connectFrom = Date.now();
    timers.push(
      setInterval(() => {
        const now = total();
        peakRss = Math.max(peakRss, now.rssBytes);
        timeline.push({ t: Math.round((Date.now() - connectFrom) / 1000), online: now.online, reconnects: now.reconnects, acked: now.acked, sent: now.sent, queued: now.queued, rssBytes: now.rssBytes });
        if (timeline.length % 5 === 0) say(`t=${timeline.at(-1)?.t}s online ${now.online}/${s.devices} sent ${now.sent} acked ${now.acked} reconnects ${now.reconnects}`);
      }, 1000),
    );
    // The devices come online a window at a time (as a fleet does), then the readings and the phases start.
    await Promise.all(parts.map((p) => p.connect()));
    const t0 = Date.now();
    say(`connected: ${total().online}/${s.devices} online after ${Math.round((t0 - connectFrom) / 1000)} s; readings start`);
    await Promise.all(parts.map((p) => p.startReadings()));
    for (const phase of s.phases) {
      timers.push(
        setTimeout(() => {
          say(`phase ${phase.name}`);
          proxy?.set(phase.impair);
          if (ns) void Promise.all([ns.setLoss(phase.impair.lossPercent), ns.setBandwidth(phase.impair.bandwidthKbit)]).catch((err: unknown) => say(`phase ${phase.name}: ${(err as Error).message}`));
        }, phase.atMs),
      );
    }
    for (const [i, action] of s.actions.entries()) {
      timers.push(
        setTimeout(
          () =>
            void act(
              api,
              s,
              runId,
              action,
              s.seed + i,
              issued,
              () => (twinChanges += 1),
              (id) => (rolloutId = id),
            ).catch((err: unknown) => {
              actionErrors.push(`actions[${i}] (${action.kind}): ${(err as Error).message}`);
              say(`action ${i}: ${(err as Error).message}`);
            }),
          action.atMs,
        ),
      );
    }
    await new Promise((r) => setTimeout(r, s.durationMs));
    await Promise.all(parts.map((p) => p.stopReadings()));
    const readingsUntil = Date.now();
    proxy?.set(NO_IMPAIRMENT);
    if (ns) await Promise.all([ns.setLoss(0), ns.setBandwidth(null)]);
    say("readings stopped; waiting for the devices' queues to drain");
    const drainBy = Date.now() + s.drainMs;
    // Snapshots come once a second: wait for two that say every device is back online with
    // nothing queued (a device that rebooted has reported what it runs), and for the rollout to end.
    for (let quiet = 0; quiet < 2 && Date.now() < drainBy;) {
      await new Promise((r) => setTimeout(r, 1000));
      const rolling = rolloutId !== undefined && (await api.rollout(rolloutId).catch(() => undefined))?.state === 'running';
      const now = total();
      quiet = now.queued === 0 && now.online === s.devices && !rolling ? quiet + 1 : 0;
    }
    const rollout = rolloutId === undefined ? null : await api.rollout(rolloutId);
    for (const t of timers) clearInterval(t);
    const sendTimes = new SendTimes();
    for (const p of parts) sendTimes.addSeries(await p.finish());
    const final = total();
    const heapPerDevice = Math.round(process.memoryUsage().heapUsed / s.devices);

    say('reading the platform back');
    const misbehaving = new Set([...fleetChoices(s).bad].map((i) => deviceId(s, runId, i)));
    const { stored, strangers, storedTwice, latencies, gaps } = await readBack(api, s, `${s.idPrefix}${runId}-`, t0 - 60_000, Date.now() + 60_000, sendTimes, misbehaving);
    const metricsAfter = await api.metrics();
    const commands = { issued: issued.length, succeeded: 0, other: {} as Record<string, number> };
    for (const c of issued) {
      const state = await api.commandStatus(c.deviceId, c.id).catch(() => 'unknown');
      if (state === 'succeeded') commands.succeeded += 1;
      else commands.other[state] = (commands.other[state] ?? 0) + 1;
    }
    return {
      scenario: s,
      runId,
      startedAt,
      connectFrom,
      readingsFrom: t0,
      readingsUntil,
      workers,
      sent: final.sent,
      badSent: final.badSent,
      sendErrors: final.sendErrors,
      acked: final.acked,
      dropped: final.dropped,
      stored,
      strangers,
      storedTwice,
      queuedAtEnd: final.queued,
      latencies,
      gaps,
      platform: {
        duplicates: (metricsAfter.get(DUP) ?? 0) - (metricsBefore.get(DUP) ?? 0),
        deadLetters: sum(metricsAfter, 'bulwark_ingest_dead_letters_total') - sum(metricsBefore, 'bulwark_ingest_dead_letters_total'),
        metricsRead: metricsAfter.size > 0,
      },
      commands,
      twinChanges,
      configsApplied: final.configsApplied,
      restarts: final.restarts,
      reboots: final.reboots,
      timeline,
      rollout: rollout && { id: rollout.id, state: rollout.state, reason: rollout.reason, totals: rollout.totals, failHealth: fleetChoices(s).failingHealth.size },
      proxy: { used: proxy !== undefined, namespace: ns !== undefined, ...(proxy?.counts ?? { accepted: 0, resets: 0, flapDrops: 0 }) },
      notMade,
      actionErrors,
      resources: { cpuSeconds: final.cpuSeconds - cpuAtStart, peakRssBytes: Math.max(peakRss, peakOfAll(parts)), heapPerDeviceBytes: heapPerDevice },
    };
  } finally {
    for (const t of timers) clearInterval(t);
    for (const p of parts) if (p instanceof WorkerPart) p.kill();
    if (parts[0] instanceof LocalPart) await parts[0].finish().catch(() => undefined);
    await proxy?.close();
    await ns?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The highest RSS of every process over the whole run, key making and read-back included
 * (the per-second samples miss short peaks): this process's own, and each worker's at its
 * end. A sum of peaks, so never below the true peak of the processes together.
 */
function peakOfAll(parts: readonly FleetPart[]): number {
  return process.resourceUsage().maxRSS * 1024 + parts.slice(1).reduce((sum, p) => sum + p.snapshot.peakRssBytes, 0);
}

/** The fleet's snapshot: the parts' figures added up (RSS and CPU: every process's). */
function combine(snaps: readonly Snapshot[]): Snapshot {
  const out: Record<keyof Snapshot, number> = { ...EMPTY_SNAPSHOT };
  for (const snap of snaps) for (const k of Object.keys(out) as (keyof Snapshot)[]) out[k] += snap[k];
  return out;
}

/** A command or twin change to the action's share of the devices, through the platform's API. */
async function act(api: PlatformApi, s: Scenario, runId: string, a: Action, seed: number, issued: { deviceId: string; id: string }[], twinChanged: () => void, rolloutStarted: (id: string) => void): Promise<void> {
  if (a.kind === 'rollout') {
    rolloutStarted(await api.startRollout({ name: `simulation ${runId}`, artifactId: a.artifactId, target: { tag: `run-${runId}` }, strategy: a.strategy, gates: a.gates }));
    return;
  }
  for (const i of chooseShare(s.devices, a.share, seed, 4)) {
    const id = deviceId(s, runId, i);
    if (a.kind === 'command') issued.push({ deviceId: id, id: await api.command(id, a.name, { ...a.params }) });
    else {
      await api.setTwin(id, { ...a.patch });
      twinChanged();
    }
  }
}

async function readBack(api: PlatformApi, s: Scenario, prefix: string, since: number, until: number, sent: SendTimes, misbehaving: ReadonlySet<string>): Promise<Pick<RunResult, 'stored' | 'strangers' | 'storedTwice' | 'latencies' | 'gaps'>> {
  const latencies = new Float64Array(sent.size);
  let stored = 0;
  let strangers = 0;
  let storedTwice = 0;
  // Readings the simulator did not send, by message id (none in a good run).
  const foreign = new Set<string>();
  for (const schema of new Set(s.profiles.map((p) => p.schema))) {
    for await (const r of api.readings(schema, prefix, since, until)) {
      const mark = r.seq === null || r.boot === null ? 'foreign' : sent.markStored(r.deviceId, r.boot, r.seq);
      if (mark === 'foreign') {
        const k = `${r.deviceId}/${r.msgId}`;
        if (foreign.has(k)) storedTwice += 1;
        else {
          foreign.add(k);
          strangers += 1;
          stored += 1;
        }
      } else if (mark === 'twice') storedTwice += 1;
      else {
        latencies[stored - strangers] = r.receivedAt - (sent.get(r.deviceId, r.boot as string, r.seq as number) as number);
        stored += 1;
      }
    }
  }
  // A hole in a boot's sequence between its first and last stored reading (misbehaving devices are left out: their refused messages take sequence numbers too).
  const gaps = sent.holes((id) => !misbehaving.has(id));
  return { stored, strangers, storedTwice, latencies: latencies.slice(0, stored - strangers).sort(), gaps };
}
