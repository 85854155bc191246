import { type BrokerName, type Protocol, protocolName } from './broker.js';
import type { PhaseResult } from './load.js';
import type { BrokerRound } from './measure.js';
import { median } from './proc.js';

/**
 * The targets of issue 13, checked within one run. A ratio target compares Bulwark with a peer
 * round by round (the same round ran them minutes apart) and takes the median of the rounds'
 * ratios; a bound that must hold "throughout" (memory, /healthz, accounting, the one-device
 * flood) must hold in every round, and the worst round is shown.
 */

export interface TargetRow {
  readonly id: string;
  readonly what: string;
  readonly bulwark: string;
  readonly mosquitto: string;
  readonly aedes: string;
  /** The figure checked against the limit, with how it was formed. */
  readonly value: string;
  readonly limit: string;
  readonly result: 'MET' | 'MISS' | 'n/a';
  /** The checked figure and its limit as numbers (for the chart); `max`: the figure must stay at or below the limit. */
  readonly measured: number | null;
  readonly bound: number;
  readonly kind: 'max' | 'min';
}

export const fmt = (v: number | null | undefined, digits = 2): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(Math.round(v * 10 ** digits) / 10 ** digits);
};

type Pick = (r: BrokerRound) => number | null | undefined;

const byProto = (list: readonly PhaseResult[], p: Protocol) => list.find((x) => x.protocol === p);

export function evaluateTargets(rounds: readonly BrokerRound[]): TargetRow[] {
  const of = (n: BrokerName) => rounds.filter((r) => r.name === n).sort((a, b) => a.round - b.round);
  const b = of('bulwark');
  if (b.length === 0) return [];
  const peers = { mosquitto: of('mosquitto'), aedes: of('aedes') };
  const med = (list: readonly BrokerRound[], f: Pick) => median(list.map(f));
  const fig = (list: readonly BrokerRound[], f: Pick, unit = '') => (list.length && med(list, f) !== null ? `${fmt(med(list, f))}${unit}` : '-');
  const ratios = (peer: readonly BrokerRound[], f: Pick) =>
    b
      .map((x) => {
        const y = peer.find((r) => r.round === x.round);
        const [u, v] = [f(x), y ? f(y) : null];
        return typeof u === 'number' && typeof v === 'number' && v > 0 ? u / v : null;
      })
      .filter((x): x is number => x !== null);
  const out: TargetRow[] = [];
  const ratioRow = (id: string, what: string, peerName: 'mosquitto' | 'aedes', f: Pick, unit: string, limit: number) => {
    const rs = ratios(peers[peerName], f);
    const m = median(rs);
    out.push({
      id,
      what,
      bulwark: fig(b, f, unit),
      mosquitto: fig(peers.mosquitto, f, unit),
      aedes: fig(peers.aedes, f, unit),
      value: m === null ? `no ${peerName} in this run` : `${fmt(m)}× ${peerName === 'aedes' ? 'Aedes' : 'Mosquitto'} (median of ${rs.length}: ${rs.map((x) => fmt(x)).join(', ')})`,
      limit: `≤ ${limit}×`,
      result: m === null ? 'n/a' : m <= limit ? 'MET' : 'MISS',
      measured: m,
      bound: limit,
      kind: 'max',
    });
  };
  const protos = ([4, 5] as const).filter((p) => b.some((r) => byProto(r.qos1, p)));
  for (const p of protos) {
    ratioRow(`1 ${protocolName(p)}`, 'CPU per stored QoS 1 message (µs) vs Mosquitto per passed message', 'mosquitto', (r) => byProto(r.qos1, p)?.serverCpuUsPerMsg, ' µs', 2.5);
  }
  for (const p of protos) {
    const offered = byProto(b[0]?.paced ?? [], p)?.extra.offeredPerSec ?? 0;
    const sustained = peers.mosquitto.every((r) => (byProto(r.paced, p)?.msgPerSec ?? 0) >= 0.97 * offered);
    const how = peers.mosquitto.length ? (sustained ? `; Mosquitto took all ${fmt(offered)} msg/s offered` : `; Mosquitto fell short of ${fmt(offered)} msg/s in a round: queueing`) : '';
    ratioRow(`2 ${protocolName(p)}`, `p99 publish→PUBACK (ms) at ${fmt(offered)} msg/s offered${how}`, 'mosquitto', (r) => byProto(r.paced, p)?.puback?.p99, ' ms', 2);
    ratioRow(`2 ${protocolName(p)}`, 'p99 publish→live subscriber (ms), same run (Bulwark: its SSE live stream)', 'mosquitto', (r) => byProto(r.paced, p)?.live?.p99, ' ms', 2);
  }
  ratioRow('3', 'CPU per full mTLS handshake + CONNECT (ms) vs plain Aedes (hook-less Node TLS server)', 'aedes', (r) => r.storm.serverCpuMsPerHandshake, ' ms', 1.2);

  // 4: the QoS 0 flood.
  const worst = (f: Pick, hi = true) =>
    b
      .map(f)
      .filter((x): x is number => typeof x === 'number')
      .reduce((w, x) => (hi ? Math.max(w, x) : Math.min(w, x)), hi ? -Infinity : Infinity);
  const growth: Pick = (r) => r.qos0.extra.rssGrowthMb;
  const g = worst(growth);
  out.push({
    id: '4a',
    what: `QoS 0 flood from every load device: RSS growth (peak in the flood − RSS at start, MiB; worst round)`,
    bulwark: `${fmt(g)} MiB (in the flood alone: ${fmt(worst((r) => r.qos0.extra.rssGrowthInFloodMb))})`,
    mosquitto: fig(peers.mosquitto, growth, ' MiB'),
    aedes: fig(peers.aedes, growth, ' MiB'),
    value: `${fmt(g)} MiB`,
    limit: '< 256 MiB',
    result: g < 256 ? 'MET' : 'MISS',
    measured: g,
    bound: 256,
    kind: 'max',
  });
  const hz = worst((r) => r.qos0.extra.healthzMaxMs);
  const hzFailed = b.reduce((n, r) => n + (r.qos0.extra.healthzFailures ?? 0), 0);
  const probes = b.reduce((n, r) => n + (r.qos0.extra.healthzProbes ?? 0), 0);
  out.push({
    id: '4b',
    what: '/healthz during the flood (probed every 250 ms; slowest answer of all rounds)',
    bulwark: `${fmt(hz)} ms (${probes} probes, ${hzFailed} failed)`,
    mosquitto: '-',
    aedes: '-',
    value: `${fmt(hz)} ms`,
    limit: '≤ 100 ms',
    result: probes > 0 && hzFailed === 0 && hz <= 100 ? 'MET' : 'MISS',
    measured: hzFailed ? Infinity : hz,
    bound: 100,
    kind: 'max',
  });
  const account = b.map((r) => {
    const e = r.qos0.extra;
    const sum = (e.stored ?? 0) + (e.shed ?? 0) + (e.duplicate ?? 0) + (e.dead_lettered ?? 0);
    return {
      ok: e.sent === sum && e.drainedAfter === 1,
      text: `r${r.round}: ${fmt(e.sent)} sent = ${fmt(e.stored)} stored + ${fmt(e.shed)} shed${e.duplicate || e.dead_lettered ? ` + ${fmt((e.duplicate ?? 0) + (e.dead_lettered ?? 0))} other` : ''}${e.sent === sum ? '' : ` (${fmt((e.sent ?? 0) - sum)} missing)`}`,
    };
  });
  out.push({
    id: '4c',
    what: 'every flood message stored or counted as shed (/metrics after the pipeline drained)',
    bulwark: account.map((a) => a.text).join('; '),
    mosquitto: '-',
    aedes: '-',
    value: `${account.filter((a) => a.ok).length}/${account.length} rounds balance`,
    limit: 'all',
    result: account.every((a) => a.ok) ? 'MET' : 'MISS',
    measured: account.filter((a) => a.ok).length / Math.max(1, account.length),
    bound: 1,
    kind: 'min',
  });
  const storedRate: Pick = (r) => r.qos0.extra.storedPerSec;
  const q1rate: Pick = (r) => byProto(r.qos1, 4)?.msgPerSec;
  const rs = b
    .map((r) => {
      const [x, y] = [storedRate(r), q1rate(r)];
      return typeof x === 'number' && y ? x / y : null;
    })
    .filter((x): x is number => x !== null);
  const m4 = median(rs);
  const intake: Pick = (r) => r.qos0.msgPerSec;
  out.push({
    id: '4d',
    what: "readings stored during the flood (msg/s) vs Bulwark's QoS 1 saturation rate (MQTT 3.1.1); peers: QoS 0 taken in / QoS 1 msg/s",
    bulwark: `${fmt(med(b, storedRate))} stored/s vs ${fmt(med(b, q1rate))} QoS 1/s`,
    mosquitto: `${fmt(med(peers.mosquitto, intake))} / ${fmt(med(peers.mosquitto, q1rate))}`,
    aedes: `${fmt(med(peers.aedes, intake))} / ${fmt(med(peers.aedes, q1rate))}`,
    value: m4 === null ? '-' : `${fmt(m4)}× (median of ${rs.length}: ${rs.map((x) => fmt(x)).join(', ')})`,
    limit: '≥ 0.8×',
    result: m4 === null ? 'n/a' : m4 >= 0.8 ? 'MET' : 'MISS',
    measured: m4,
    bound: 0.8,
    kind: 'min',
  });

  // 5: idle sessions.
  const kb: Pick = (r) => r.idle.kbPerSession;
  const sessions = b[0]?.idle.sessions ?? 0;
  const k = med(b, kb);
  out.push({
    id: '5',
    what: `RSS per idle mTLS session at ${fmt(sessions)} sessions (KB, median), default settings${sessions < 19_000 ? ' — fewer than the 19k of the target' : ''}`,
    bulwark: `${fmt(k)} KB (${b.map((r) => fmt(kb(r))).join(', ')})`,
    mosquitto: fig(peers.mosquitto, kb, ' KB'),
    aedes: fig(peers.aedes, kb, ' KB'),
    value: `${fmt(k)} KB`,
    limit: '≤ 44 KB',
    result: k === null ? 'n/a' : k <= 44 ? 'MET' : 'MISS',
    measured: k,
    bound: 44,
    kind: 'max',
  });

  // 6: one device flooding with default settings.
  for (const p of [4, 5] as const) {
    const runs = b.map((r) => r.single.find((s) => s.protocol === p)).filter((s) => s !== undefined);
    if (runs.length === 0) continue;
    const bound = runs[0]?.boundPerSec ?? 0;
    const ok = runs.every((s) => s.closes === 0 && s.serverDisconnects === 0 && s.errors === 0 && s.acked === s.sent && s.stored === s.sent && s.duplicates === 0 && s.ratePerSec <= bound * 1.05 && s.ratePerSec >= bound * 0.9);
    out.push({
      id: `6 ${protocolName(p)}`,
      what: `one device publishing QoS 1 flat out (${runs[0]?.window} unacknowledged), default settings: never disconnected, nothing lost, (acked − burst) / elapsed held to ${bound}/s`,
      bulwark: runs.map((s) => `${fmt(s.ratePerSec, 1)}/s, ${fmt(s.stored)}/${fmt(s.sent)} stored, ${s.closes + s.serverDisconnects} disconnects`).join('; '),
      mosquitto: 'no rate bound',
      aedes: 'no rate bound',
      value: `${fmt(Math.max(...runs.map((s) => s.ratePerSec)), 1)}/s at most`,
      limit: `${bound}/s (0.9-1.05×), 0 lost, 0 disconnects`,
      result: ok ? 'MET' : 'MISS',
      measured: ok ? Math.max(...runs.map((s) => s.ratePerSec)) : Infinity,
      bound: bound * 1.05,
      kind: 'max',
    });
  }
  return out;
}
