import { type AddressInfo, type Server, type Socket, createServer, connect } from 'node:net';

/**
 * Test-only TCP proxy in front of the MQTT port, for network faults: `cut()` drops every
 * connection at once; `refuse(true)` closes new connections at once (network down);
 * `blackhole(true)` keeps sockets open but forwards nothing either way (a dead path that
 * TCP does not notice). Records when each connection was accepted (ms, performance.now()).
 */
export class FaultProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<{ a: Socket; b: Socket }>();
  #refuse = false;
  #blackhole = false;
  readonly accepted: number[] = [];
  readonly forwarded: number[] = [];
  port = 0;

  constructor(targetPort: number, targetHost = '127.0.0.1') {
    this.#target = { host: targetHost, port: targetPort };
    this.#server = createServer((a) => this.#accept(a));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this.port;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  refuse(on: boolean): void {
    this.#refuse = on;
  }

  blackhole(on: boolean): void {
    this.#blackhole = on;
  }

  /** Drops every connection now (RST). */
  cut(): void {
    for (const { a, b } of this.#pairs) {
      a.resetAndDestroy();
      b.destroy();
    }
    this.#pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(a: Socket): void {
    this.accepted.push(performance.now());
    if (this.#refuse) {
      a.resetAndDestroy();
      return;
    }
    const b = connect(this.#target.port, this.#target.host);
    const pair = { a, b };
    this.#pairs.add(pair);
    const end = () => {
      this.#pairs.delete(pair);
      a.destroy();
      b.destroy();
    };
    a.on('error', end).on('close', end);
    b.on('error', end).on('close', end);
    a.on('data', (d: Buffer) => {
      if (this.#blackhole) return;
      if (this.forwarded.length < 100_000) this.forwarded.push(performance.now());
      b.write(d);
    });
    b.on('data', (d: Buffer) => {
      if (!this.#blackhole) a.write(d);
    });
  }
}
