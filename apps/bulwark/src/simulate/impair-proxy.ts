import { type AddressInfo, type Server, type Socket, createServer, connect } from 'node:net';
import { type Impairment, NO_IMPAIRMENT } from './scenario.js';

/**
 * The user-space half of network impairment: TCP proxies in front of the platform's MQTT
 * port, one per lane (devices are spread over the lanes in order, so a partition of 30 % cuts
 * the first 30 lanes). Each lane delays every chunk by latency ± jitter (in order, per
 * direction), resets connections at random, holds a partition (its connections stay open and
 * carry nothing, as a dead path does: the devices notice by their own timeouts) and flaps
 * (connections dropped and new ones refused for a while, again and again). Packet loss and
 * bandwidth caps need the kernel (a network namespace); see netns.ts.
 */
export class ImpairProxy {
  readonly #lanes: Lane[] = [];
  #impair: Impairment = NO_IMPAIRMENT;
  #flapTimer: NodeJS.Timeout | undefined;
  #resetTimer: NodeJS.Timeout | undefined;
  /** Connections accepted, reset by the proxy, dropped by flapping, over the run. */
  readonly counts = { accepted: 0, resets: 0, flapDrops: 0 };

  private constructor(
    private readonly target: { host: string; port: number },
    private readonly random: () => number,
  ) {}

  /** `bindHost`: where the lanes listen (the host end of a namespace's veth pair when packets are dropped there too). */
  static async start(target: { host: string; port: number }, lanes: number, random: () => number, bindHost = '127.0.0.1'): Promise<ImpairProxy> {
    const proxy = new ImpairProxy(target, random);
    for (let i = 0; i < lanes; i += 1) proxy.#lanes.push(await Lane.open(proxy, bindHost));
    return proxy;
  }

  /** The lane device `index` of `devices` goes through. */
  laneOf(index: number, devices: number): number {
    return Math.min(this.#lanes.length - 1, Math.floor((index * this.#lanes.length) / devices));
  }

  /** The port device `index` of `devices` connects to. */
  portFor(index: number, devices: number): number {
    return (this.#lanes[this.laneOf(index, devices)] as Lane).port;
  }

  /** Every lane's port, in lane order. */
  get ports(): number[] {
    return this.#lanes.map((l) => l.port);
  }

  get impairment(): Impairment {
    return this.#impair;
  }

  /** Applies a phase's conditions from now on. */
  set(impair: Impairment): void {
    this.#impair = impair;
    const cut = Math.round(impair.partition * this.#lanes.length);
    for (const [i, lane] of this.#lanes.entries()) lane.partitioned = i < cut;
    clearInterval(this.#flapTimer);
    this.#flapTimer = undefined;
    for (const lane of this.#lanes) lane.down = false;
    if (impair.flapping) {
      const { everyMs, downMs } = impair.flapping;
      this.#flapTimer = setInterval(() => {
        for (const lane of this.#lanes) this.counts.flapDrops += lane.dropAll();
        for (const lane of this.#lanes) lane.down = true;
        setTimeout(() => {
          if (this.#impair === impair) for (const lane of this.#lanes) lane.down = false;
        }, downMs).unref();
      }, everyMs);
      this.#flapTimer.unref();
    }
    clearInterval(this.#resetTimer);
    this.#resetTimer = undefined;
    if (impair.resetsPerMinute > 0) {
      // Checked every second: each connection is reset with the per-second share of the rate.
      const p = impair.resetsPerMinute / 60;
      this.#resetTimer = setInterval(() => {
        for (const lane of this.#lanes) this.counts.resets += lane.resetSome(() => this.random() < p);
      }, 1000);
      this.#resetTimer.unref();
    }
  }

  /** Latency for one chunk now. */
  delay(): number {
    const { latencyMs, jitterMs } = this.#impair;
    if (latencyMs === 0 && jitterMs === 0) return 0;
    return Math.max(0, latencyMs + (this.random() * 2 - 1) * jitterMs);
  }

  connectTarget(): Socket {
    return connect(this.target.port, this.target.host);
  }

  async close(): Promise<void> {
    clearInterval(this.#flapTimer);
    clearInterval(this.#resetTimer);
    await Promise.all(this.#lanes.map((l) => l.close()));
  }
}

interface Pair {
  readonly device: Socket;
  readonly platform: Socket;
}

class Lane {
  readonly #pairs = new Set<Pair>();
  partitioned = false;
  down = false;
  port = 0;

  private constructor(
    private readonly proxy: ImpairProxy,
    private readonly server: Server,
  ) {}

  static async open(proxy: ImpairProxy, bindHost: string): Promise<Lane> {
    const server = createServer();
    const lane = new Lane(proxy, server);
    server.on('connection', (socket: Socket) => lane.accept(socket));
    await new Promise<void>((resolve) => server.listen(0, bindHost, resolve));
    lane.port = (server.address() as AddressInfo).port;
    return lane;
  }

  accept(device: Socket): void {
    if (this.down) {
      device.destroy();
      return;
    }
    this.proxy.counts.accepted += 1;
    const platform = this.proxy.connectTarget();
    const pair = { device, platform };
    this.#pairs.add(pair);
    const end = () => {
      this.#pairs.delete(pair);
      device.destroy();
      platform.destroy();
    };
    device.on('error', end).on('close', end);
    platform.on('error', end).on('close', end);
    this.#pipe(device, platform);
    this.#pipe(platform, device);
  }

  /** Forwards `from` → `to`, each chunk after the current delay, never overtaking the one before; nothing while partitioned. */
  #pipe(from: Socket, to: Socket): void {
    let lastDue = 0;
    from.on('data', (chunk: Buffer) => {
      if (this.partitioned) return;
      const wait = this.proxy.delay();
      if (wait === 0 && lastDue <= performance.now()) {
        to.write(chunk);
        return;
      }
      const due = Math.max(performance.now() + wait, lastDue);
      lastDue = due;
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, due - performance.now());
    });
  }

  dropAll(): number {
    const n = this.#pairs.size;
    for (const p of [...this.#pairs]) p.device.destroy();
    return n;
  }

  resetSome(pick: () => boolean): number {
    let n = 0;
    for (const p of [...this.#pairs]) {
      if (!pick()) continue;
      p.device.resetAndDestroy();
      p.platform.destroy();
      n += 1;
    }
    return n;
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
