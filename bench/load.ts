import { once } from 'node:events';
import type { MqttClient } from 'mqtt';
import { connect } from '../packages/server/src/testing/devices.js';
import type { Broker } from './broker.js';
import { CpuWindow, RssSampler, Samples, pool, round } from './proc.js';

/** The message load: 100 devices (by default) over mTLS with mqtt.js, QoS 1 with a bounded window, a QoS 0 flood, and a paced QoS 1 run. */

export interface LoadSettings {
  readonly devices: number;
  readonly durationS: number;
  readonly warmupS: number;
  /** QoS 1 publishes in flight per device in the saturation run. */
  readonly window: number;
  /** Devices whose messages the live subscriber follows. */
  readonly liveDevices: number;
  /** Offered rate (msg/s) of the paced run. */
  readonly pacedRate: number;
}

interface Device {
  readonly index: number;
  readonly client: MqttClient;
  readonly topic: string;
  seq: number;
  inflight: number;
}

export interface PhaseResult {
  msgPerSec: number;
  messages: number;
  puback: { p50: number; p99: number; n: number } | null;
  live: { p50: number; p99: number; n: number } | null;
  /** Sampled messages the live subscriber never saw. */
  liveMissing: number;
  serverCpuUsPerMsg: number;
  serverCores: number;
  loadGenCores: number;
  peakRssMb: number;
  errors: number;
  extra: Record<string, number>;
}

export class Load {
  readonly #devices: Device[];
  /** Send times of sampled messages (the live subscriber's devices), by message id. */
  readonly #liveSent = new Map<string, number>();
  #liveSamples = new Samples();
  #liveOn = false;

  private constructor(private readonly broker: Broker, clients: MqttClient[], private readonly s: LoadSettings) {
    this.#devices = clients.map((client, index) => ({ index, client, topic: `devices/${broker.device(index).id}/telemetry`, seq: 0, inflight: 0 }));
  }

  static async connect(broker: Broker, s: LoadSettings): Promise<Load> {
    const clients = await pool(Array.from({ length: s.devices }, (_, i) => broker.device(i)), 10, (d) => connect({
      host: '127.0.0.1', port: broker.port, protocol: 'mqtts', protocolVersion: 4, clientId: d.id, ...d.creds,
      rejectUnauthorized: true, reconnectPeriod: 0, connectTimeout: 20_000, keepalive: 60, clean: true,
    }));
    return new Load(broker, clients, s);
  }

  /** The negotiated TLS version and cipher, from the first device's socket. */
  tlsInfo(): string {
    const socket = this.#devices[0]?.client.stream as unknown as { getProtocol?: () => string; getCipher?: () => { name: string } };
    return `${socket.getProtocol?.() ?? '?'} ${socket.getCipher?.().name ?? '?'}`;
  }

  async close(): Promise<void> {
    await Promise.all(this.#devices.map((d) => d.client.endAsync(true)));
  }

  #payload(d: Device, measuring: boolean): string {
    d.seq += 1;
    const id = `${d.index}-${d.seq}`;
    if (this.#liveOn && measuring && d.index < this.s.liveDevices) this.#liveSent.set(id, performance.now());
    return `{"id":"${id}","seq":${d.seq},"ts":${Date.now()},"schema":"bench@1","data":{"v":${d.seq}}}`;
  }

  async #withLive<T>(fn: () => Promise<T>): Promise<T> {
    const ids = this.#devices.slice(0, this.s.liveDevices).map((d) => this.broker.device(d.index).id);
    this.#liveSent.clear();
    this.#liveSamples = new Samples();
    const stop = await this.broker.liveTap(ids, (msgId) => {
      const t = this.#liveSent.get(msgId);
      if (t === undefined) return;
      this.#liveSent.delete(msgId);
      this.#liveSamples.add(performance.now() - t);
    });
    this.#liveOn = true;
    try {
      return await fn();
    } finally {
      this.#liveOn = false;
      await stop();
    }
  }

  /** Waits until `measure` has run for `durationS` after `warmupS`; returns the measured window. */
  async #window(onStart: () => void): Promise<{ cpu: CpuWindow; rss: RssSampler }> {
    await delay(this.s.warmupS * 1000);
    onStart();
    const w = { cpu: new CpuWindow(this.broker.pid), rss: new RssSampler(this.broker.pid) };
    await delay(this.s.durationS * 1000);
    return w;
  }

  /** Each device keeps `window` QoS 1 publishes in flight, flat out. */
  qos1(): Promise<PhaseResult> {
    return this.#withLive(async () => {
      let running = true;
      let measuring = false;
      let acked = 0;
      let errors = 0;
      const puback = new Samples();
      let idle: () => void = () => undefined;
      const allIdle = new Promise<void>((resolve) => { idle = resolve; });
      let total = 0;
      const pump = (d: Device) => {
        while (running && d.inflight < this.s.window) {
          const t = performance.now();
          const counted = measuring;
          d.inflight += 1;
          total += 1;
          d.client.publish(d.topic, this.#payload(d, measuring), { qos: 1 }, (err) => {
            d.inflight -= 1;
            total -= 1;
            if (err) errors += 1;
            else if (counted && measuring) {
              acked += 1;
              puback.add(performance.now() - t);
            }
            if (running) pump(d);
            else if (total === 0) idle();
          });
        }
      };
      this.#devices.forEach(pump);
      const { cpu, rss } = await this.#window(() => { measuring = true; });
      measuring = false;
      const c = cpu.end();
      const ackedInWindow = acked;
      running = false;
      await Promise.race([allIdle, delay(30_000)]);
      return this.#result(ackedInWindow, c, rss.stop(), puback, errors, {});
    });
  }

  /**
   * QoS 0 as fast as each socket takes it, with a QoS 1 marker after every 200 messages of a
   * device and at most two markers unanswered: the broker's intake is what is counted (a
   * marker's PUBACK comes after the messages before it), and the client never piles up more
   * than ~400 messages a device in socket buffers.
   */
  async qos0(): Promise<PhaseResult> {
    let running = false;
    let sent = 0;
    const flood = async (d: Device) => {
      const stream = d.client.stream as unknown as NodeJS.WritableStream & { writableLength: number };
      const markers: Promise<unknown>[] = [];
      while (running) {
        for (let k = 0; k < 200; k += 1) {
          if (stream.writableLength >= 65_536) await once(stream, 'drain');
          d.client.publish(d.topic, this.#payload(d, false), { qos: 0 });
        }
        markers.push(d.client.publishAsync(d.topic, this.#payload(d, false), { qos: 1 }));
        sent += 201;
        if (markers.length >= 2) await markers.shift();
      }
      await Promise.all(markers);
    };
    const run = async (seconds: number) => {
      running = true;
      const loops = this.#devices.map(flood);
      await delay(seconds * 1000);
      running = false;
      await Promise.all(loops);
    };
    await run(this.s.warmupS);
    sent = 0;
    const before = await this.broker.counts?.();
    const cpu = new CpuWindow(this.broker.pid);
    const rss = new RssSampler(this.broker.pid);
    const health = new Samples();
    const probe = this.broker.healthz ? setInterval(() => void this.broker.healthz?.().then((ms) => health.add(ms), () => health.add(Infinity)), 250) : undefined;
    await run(this.s.durationS);
    const c = cpu.end();
    if (probe) clearInterval(probe);
    const after = await this.broker.counts?.();
    const extra: Record<string, number> = { sent };
    if (before && after) extra.stored = (after.stored ?? 0) - (before.stored ?? 0);
    const h = health.summary();
    if (h) extra.healthzMaxMs = round(Math.max(h.p99, h.p50), 1);
    return this.#result(sent, c, rss.stop(), new Samples(), 0, extra);
  }

  /** QoS 1 at a fixed offered rate (spread over the devices), for latency below saturation. */
  paced(): Promise<PhaseResult> {
    return this.#withLive(async () => {
      let measuring = false;
      let acked = 0;
      let skipped = 0;
      let errors = 0;
      const puback = new Samples();
      const cap = 100;
      let offered = 0;
      let next = 0;
      const t0 = performance.now();
      const tick = () => {
        const due = Math.floor(((performance.now() - t0) / 1000) * this.s.pacedRate);
        for (; offered < due; offered += 1) {
          const d = this.#devices[next++ % this.#devices.length] as Device;
          if (d.inflight >= cap) {
            skipped += 1;
            continue;
          }
          const t = performance.now();
          const counted = measuring;
          d.inflight += 1;
          d.client.publish(d.topic, this.#payload(d, measuring), { qos: 1 }, (err) => {
            d.inflight -= 1;
            if (err) errors += 1;
            else if (counted && measuring) {
              acked += 1;
              puback.add(performance.now() - t);
            }
          });
        }
      };
      const timer = setInterval(tick, 1);
      const { cpu, rss } = await this.#window(() => { measuring = true; skipped = 0; });
      measuring = false;
      clearInterval(timer);
      const c = cpu.end();
      const res = this.#result(acked, c, rss.stop(), puback, errors, { offeredPerSec: this.s.pacedRate, skippedBacklog: skipped });
      await Promise.race([Promise.all(this.#devices.map((d) => d.client.publishAsync(d.topic, this.#payload(d, false), { qos: 1 }))), delay(30_000)]);
      return res;
    });
  }

  #result(messages: number, c: ReturnType<CpuWindow['end']>, peakRssKb: number, puback: Samples, errors: number, extra: Record<string, number>): PhaseResult {
    return {
      msgPerSec: round(messages / (c.wallMs / 1000), 0), messages, puback: puback.summary(), live: this.#liveSamples.summary(),
      liveMissing: this.#liveOn ? this.#liveSent.size : 0,
      serverCpuUsPerMsg: round((c.serverCpuMs * 1000) / Math.max(1, messages), 1), serverCores: round(c.serverCores, 2),
      loadGenCores: round(c.loadGenCores, 2), peakRssMb: round(peakRssKb / 1024, 1), errors, extra,
    };
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
