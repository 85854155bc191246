import { once } from 'node:events';
import type { Counts } from './broker.js';
import { progress } from './children.js';
import { drained } from './drain.js';
import { type Device, type Load, type PhaseResult, measureFor } from './load.js';
import { CpuWindow, RssSampler, Samples, round, settledRssKb } from './proc.js';

/**
 * The QoS 0 flood: every device sends QoS 0 as fast as its socket takes it, with a QoS 1 marker
 * after every 200 messages and at most two markers unanswered, so that what is counted is what
 * the broker took in (a marker's PUBACK comes after the messages before it) and the client never
 * piles up more than ~400 messages a device in socket buffers. No warm-up: the flood starts on an
 * idle broker. For Bulwark, /healthz is timed every 250 ms throughout, and its counters say what
 * became of every message (stored, or shed past ingest.maxPendingMessages) once it has drained.
 */

const diff = (a: Counts | undefined, b: Counts | undefined, key: string): number => (b?.outcomes[key] ?? 0) - (a?.outcomes[key] ?? 0);

export async function qos0Flood(load: Load, rssStartKb: number): Promise<PhaseResult> {
  const { broker, s } = load;
  let running = false;
  let sent = 0;
  const flood = async (d: Device) => {
    const stream = d.client.stream as unknown as NodeJS.WritableStream & { writableLength: number };
    const markers: Promise<unknown>[] = [];
    while (running) {
      for (let k = 0; k < 200; k += 1) {
        if (stream.writableLength >= 65_536) await once(stream, 'drain');
        d.client.publish(d.topic, load.payload(d, false), { qos: 0 });
      }
      markers.push(d.client.publishAsync(d.topic, load.payload(d, false), { qos: 1 }));
      sent += 201;
      if (markers.length >= 2) await markers.shift();
    }
    await Promise.all(markers);
  };
  const rssBeforeKb = await settledRssKb(broker.pid);
  const before = await broker.counts?.();
  const cpu = new CpuWindow(broker.pid);
  const rss = new RssSampler(broker.pid);
  const health = new Samples();
  let healthFailures = 0;
  let probing = false;
  const probe = broker.healthz
    ? setInterval(() => {
        if (probing) return; // one probe at a time; a slow answer is recorded when it comes
        probing = true;
        broker
          .healthz?.()
          .then(
            (ms) => health.add(ms),
            () => {
              healthFailures += 1;
            },
          )
          .finally(() => {
            probing = false;
          });
      }, 250)
    : undefined;
  running = true;
  const loops = load.devices.map(flood);
  await measureFor(s.durationS, `${broker.name}: QoS 0 flood from ${load.devices.length} devices`, () => sent);
  running = false;
  await Promise.all(loops);
  const c = cpu.end();
  if (probe) clearInterval(probe);
  const atEnd = await broker.counts?.();
  const extra: Record<string, number> = { sent, rssBeforeMb: round(rssBeforeKb / 1024), rssStartMb: round(rssStartKb / 1024) };
  if (before && atEnd) {
    progress(`${broker.name}: flood over; waiting for the pipeline to drain before counting outcomes`);
    const d = await drained(broker, 'after the flood', 300_000);
    const after = await broker.counts?.();
    extra.storedDuringFlood = diff(before, atEnd, 'stored');
    extra.storedPerSec = round(extra.storedDuringFlood / (c.wallMs / 1000), 0);
    for (const k of ['stored', 'shed', 'duplicate', 'dead_lettered']) extra[k] = diff(before, after, k);
    extra.drainedAfter = d.drained ? 1 : 0;
    extra.disconnects = (after?.disconnects ?? 0) - before.disconnects;
  }
  const h = health.summary();
  if (broker.healthz) {
    extra.healthzProbes = health.count;
    extra.healthzFailures = healthFailures;
    if (h) extra.healthzMaxMs = round(health.max(), 1);
    if (h) extra.healthzP99Ms = round(h.p99, 1);
  }
  const res = load.result(sent, c, rss.stop(), new Samples(), 0, extra);
  res.extra.rssGrowthMb = round(res.peakRssMb - rssStartKb / 1024);
  res.extra.rssGrowthInFloodMb = round(res.peakRssMb - rssBeforeKb / 1024);
  return res;
}
