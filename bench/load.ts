import type { MqttClient } from 'mqtt';
import { connect } from '../packages/server/src/testing/devices.js';
import { type Broker, type Protocol, protocolName } from './broker.js';
import { progress } from './children.js';
import { CpuWindow, RssSampler, Samples, delay, pool, round } from './proc.js';

/** The message load: 100 devices (by default) over mTLS with mqtt.js, QoS 1 with a bounded window and a paced QoS 1 run (the QoS 0 flood is in flood.ts). */

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

export interface Device {
  readonly index: number;
  readonly client: MqttClient;
  readonly topic: string;
  seq: number;
  inflight: number;
}

export interface PhaseResult {
  protocol: Protocol;
  msgPerSec: number;
  messages: number;
  puback: { p50: number; p99: number; n: number } | null;
  live: { p50: number; p99: number; n: number } | null;
  /** Sampled messages the live subscriber never saw. */
  liveMissing: number;
  serverCpuUsPerMsg: number;
  serverCores: number;
  loadGenCores: number;
  /** Cores busy with other processes on the machine during the window (noise). */
  otherCores: number;
  peakRssMb: number;
  errors: number;
  /** Time spent waiting for the broker to drain before the phase, and whether it did. */
  drainMs: number;
  drained: boolean;
  extra: Record<string, number>;
}

/** Sequence numbers per device index, across every connection of the run, so that they never go backwards; and a tag per Load for unique message ids. */
const sequences: number[] = [];
let loads = 0;

export class Load {
  readonly devices: Device[];
  readonly #tag = `L${(loads += 1)}`;
  /** The schema and data of every reading (the alerts phase sends a field that crosses its rules' limit once in 100 readings). */
  schema = 'bench@1';
  data: (seq: number, device: number) => string = (seq) => `{"v":${seq}}`;
  /** Send times of sampled messages (the live subscriber's devices), by message id. */
  readonly #liveSent = new Map<string, number>();
  #liveSamples = new Samples();
  #liveOn = false;

  private constructor(
    readonly broker: Broker,
    clients: MqttClient[],
    readonly s: LoadSettings,
    readonly protocol: Protocol,
  ) {
    this.devices = clients.map((client, index) => ({ index, client, topic: `devices/${broker.device(index).id}/telemetry`, seq: sequences[index] ?? 0, inflight: 0 }));
  }

  static async connect(broker: Broker, s: LoadSettings, protocol: Protocol): Promise<Load> {
    const clients = await pool(
      Array.from({ length: s.devices }, (_, i) => broker.device(i)),
      10,
      (d) =>
        connect({
          host: '127.0.0.1',
          port: broker.port,
          protocol: 'mqtts',
          protocolVersion: protocol,
          clientId: d.id,
          ...d.creds,
          rejectUnauthorized: true,
          reconnectPeriod: 0,
          connectTimeout: 20_000,
          keepalive: 60,
          clean: true,
        }),
    );
    return new Load(broker, clients, s, protocol);
  }

  /** The negotiated TLS version and cipher, from the first device's socket. */
  tlsInfo(): string {
    const socket = this.devices[0]?.client.stream as unknown as { getProtocol?: () => string; getCipher?: () => { name: string } };
    return `${socket.getProtocol?.() ?? '?'} ${socket.getCipher?.().name ?? '?'}`;
  }

  async close(): Promise<void> {
    await Promise.all(this.devices.map((d) => d.client.endAsync(true)));
  }

  payload(d: Device, measuring: boolean): string {
    d.seq += 1;
    sequences[d.index] = d.seq;
    const id = `${this.#tag}-${d.index}-${d.seq}`;
    if (this.#liveOn && measuring && d.index < this.s.liveDevices) this.#liveSent.set(id, performance.now());
    return `{"id":"${id}","seq":${d.seq},"ts":${Date.now()},"schema":"${this.schema}","data":${this.data(d.seq, d.index)}}`;
  }

  async #withLive<T>(fn: () => Promise<T>): Promise<T> {
    const ids = this.devices.slice(0, this.s.liveDevices).map((d) => this.broker.device(d.index).id);
    this.#liveSent.clear();
    this.#liveSamples = new Samples();
    const stop = await this.broker.liveTap(ids, this.protocol, (msgId) => {
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

  /** Waits `warmupS`, calls `onStart`, then measures for `durationS` with a progress line every 15 s. */
  async #window(what: string, count: () => number, onStart: () => void): Promise<{ cpu: CpuWindow; rss: RssSampler }> {
    await delay(this.s.warmupS * 1000);
    onStart();
    const w = { cpu: new CpuWindow(this.broker.pid), rss: new RssSampler(this.broker.pid) };
    await measureFor(this.s.durationS, `${this.broker.name}: ${what} (${protocolName(this.protocol)})`, count);
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
      const allIdle = new Promise<void>((resolve) => {
        idle = resolve;
      });
      let total = 0;
      const pump = (d: Device) => {
        while (running && d.inflight < this.s.window) {
          const t = performance.now();
          const counted = measuring;
          d.inflight += 1;
          total += 1;
          d.client.publish(d.topic, this.payload(d, measuring), { qos: 1 }, (err) => {
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
      this.devices.forEach(pump);
      const { cpu, rss } = await this.#window(
        'QoS 1 flat out',
        () => acked,
        () => {
          measuring = true;
        },
      );
      measuring = false;
      const c = cpu.end();
      const ackedInWindow = acked;
      running = false;
      await Promise.race([allIdle, delay(30_000)]);
      return this.result(ackedInWindow, c, rss.stop(), puback, errors, {});
    });
  }

  /** QoS 1 at a fixed offered rate (spread over the devices), for latency below saturation. */
  paced(): Promise<PhaseResult> {
    return this.#withLive(async () => {
      let measuring = false;
      let acked = 0;
      let skipped = 0;
      let errors = 0;
      const puback = new Samples();
      const cap = 100; // in flight per device: Bulwark's default Receive Maximum, which MQTT 5 clients must keep to
      let offered = 0;
      let next = 0;
      const t0 = performance.now();
      const tick = () => {
        const due = Math.floor(((performance.now() - t0) / 1000) * this.s.pacedRate);
        for (; offered < due; offered += 1) {
          const d = this.devices[next++ % this.devices.length] as Device;
          if (d.inflight >= cap) {
            skipped += 1;
            continue;
          }
          const t = performance.now();
          const counted = measuring;
          d.inflight += 1;
          d.client.publish(d.topic, this.payload(d, measuring), { qos: 1 }, (err) => {
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
      const { cpu, rss } = await this.#window(
        `QoS 1 paced at ${this.s.pacedRate} msg/s`,
        () => acked,
        () => {
          measuring = true;
          skipped = 0;
        },
      );
      measuring = false;
      clearInterval(timer);
      const c = cpu.end();
      const res = this.result(acked, c, rss.stop(), puback, errors, { offeredPerSec: this.s.pacedRate, skippedBacklog: skipped });
      await Promise.race([Promise.all(this.devices.map((d) => d.client.publishAsync(d.topic, this.payload(d, false), { qos: 1 }))), delay(30_000)]);
      return res;
    });
  }

  result(messages: number, c: ReturnType<CpuWindow['end']>, peakRssKb: number, puback: Samples, errors: number, extra: Record<string, number>): PhaseResult {
    return {
      protocol: this.protocol,
      msgPerSec: round(messages / (c.wallMs / 1000), 0),
      messages,
      puback: puback.summary(),
      live: this.#liveSamples.summary(),
      liveMissing: this.#liveOn ? this.#liveSent.size : 0,
      serverCpuUsPerMsg: round((c.serverCpuMs * 1000) / Math.max(1, messages), 1),
      serverCores: round(c.serverCores, 2),
      loadGenCores: round(c.loadGenCores, 2),
      otherCores: round(c.otherCores, 2),
      peakRssMb: round(peakRssKb / 1024, 1),
      errors,
      drainMs: 0,
      drained: true,
      extra,
    };
  }
}

/** Sleeps `seconds`, printing progress (`count()` so far and its rate) every 15 s. */
export async function measureFor(seconds: number, what: string, count: () => number): Promise<void> {
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  progress(`${what}: measuring for ${seconds} s`);
  while (performance.now() < end) {
    await delay(Math.min(15_000, end - performance.now()));
    const s = (performance.now() - t0) / 1000;
    if (performance.now() < end - 1000) progress(`${what}: ${s.toFixed(0)}/${seconds} s, ${Math.round(count() / s)} msg/s so far`);
  }
}
