import { BlockList, type Server, type Socket, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '@bulwark/core';
import { Counter, type Registry } from 'prom-client';
import type { AddressRange } from '../config/index.js';
import { type ProxyRefusalReason, readProxyHeader } from './proxy-protocol.js';

export interface DeviceListenerOptions {
  /** Which device listener this is (a metric label and in logs). */
  readonly name: 'mqtt' | 'https';
  /** Load balancers whose connections start with a PROXY protocol v2 header; empty: the TLS server listens itself. */
  readonly proxyProtocolFrom: readonly AddressRange[];
  readonly log: Logger;
  readonly metrics: Registry;
  /** Longest wait for a trusted balancer's header. */
  readonly headerTimeoutMs?: number;
  /** Disables Nagle on accepted sockets (the TLS server's own option does not apply to sockets it did not accept). */
  readonly noDelay?: boolean;
}

export function proxyMetrics(registry: Registry) {
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    accepted:
      existing<Counter<'listener' | 'command'>>('bulwark_device_proxy_headers_total') ??
      new Counter({
        name: 'bulwark_device_proxy_headers_total',
        help: "PROXY protocol v2 headers accepted from trusted load balancers (gateway.proxyProtocolFrom), by listener and command (proxy: a client's connection; local: the balancer's own health check)",
        labelNames: ['listener', 'command'] as const,
        registers: [registry],
      }),
    refused:
      existing<Counter<'listener' | 'reason'>>('bulwark_device_proxy_refused_total') ??
      new Counter({
        name: 'bulwark_device_proxy_refused_total',
        help: 'Connections from trusted load balancers closed because they did not start with a valid PROXY protocol v2 header, by listener and reason',
        labelNames: ['listener', 'reason'] as const,
        registers: [registry],
      }),
  };
}

/**
 * The TCP side of a device TLS listener. With no trusted load balancer it is the TLS server
 * listening as it always did. With some, a plain TCP server accepts: a connection from a listed
 * balancer must start with a PROXY protocol v2 header, which is read (the bytes after it are put
 * back) before the socket goes to the TLS server; any other connection goes to the TLS server
 * untouched, so a header from an unlisted address is never believed (it fails the handshake).
 * `remoteOf` gives the device's address for logs either way.
 */
export class DeviceListener {
  #front: Server | undefined;
  readonly #trusted: BlockList | undefined;
  /** The client's address of every TCP connection accepted here: from the header on a balancer's, else its peer (read at once: it is gone from a closed socket). */
  readonly #clients = new WeakMap<Socket, string>();
  readonly #waiting = new Set<Socket>();
  readonly #metrics: ReturnType<typeof proxyMetrics> | undefined;

  constructor(
    private readonly tls: Server,
    private readonly options: DeviceListenerOptions,
  ) {
    if (options.proxyProtocolFrom.length === 0) return;
    const trusted = new BlockList();
    for (const r of options.proxyProtocolFrom) trusted.addSubnet(r.address, r.prefix, r.family);
    this.#trusted = trusted;
    this.#metrics = proxyMetrics(options.metrics);
  }

  /** Starts listening; resolves with the bound port. */
  async listen(port: number, host: string): Promise<number> {
    const server = this.#trusted ? createServer({ noDelay: this.options.noDelay ?? false }, (socket) => this.#accept(socket)) : this.tls;
    this.#front = this.#trusted ? server : undefined;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  /** Stops accepting; connections still waiting for their header are closed. Resolves once every connection it accepted is gone. */
  async close(): Promise<void> {
    const front = this.#front;
    if (!front) return;
    for (const s of this.#waiting) s.destroy();
    await new Promise<void>((resolve) => front.close(() => resolve()));
  }

  /** The device's address: from the PROXY header on a balancer's connection, else the socket's peer. */
  remoteOf(socket: TLSSocket): string | undefined {
    if (!this.#trusted) return socket.remoteAddress;
    // A TLS server socket made from a TCP socket keeps it as `_parent` (lib/_tls_wrap.js; not
    // documented, so the device-listener tests check the addresses logged through it).
    const raw = (socket as TLSSocket & { _parent?: unknown })._parent;
    return (raw && typeof raw === 'object' ? this.#clients.get(raw as Socket) : undefined) ?? socket.remoteAddress;
  }

  #accept(raw: Socket): void {
    const peer = raw.remoteAddress;
    // A socket error before or after the hand-over is the TLS socket's business (or ends the wait below).
    raw.on('error', () => undefined);
    if (peer === undefined || !this.#trusted?.check(peer, raw.remoteFamily === 'IPv6' ? 'ipv6' : 'ipv4')) {
      if (peer !== undefined) this.#clients.set(raw, peer);
      this.tls.emit('connection', raw);
      return;
    }
    this.#waiting.add(raw);
    void readProxyHeader(raw, { timeoutMs: this.options.headerTimeoutMs ?? 5_000 }).then((read) => {
      this.#waiting.delete(raw);
      if (!read.ok) return this.#refuse(raw, peer, read.reason);
      if (raw.destroyed) return this.#refuse(raw, peer, 'closed');
      const { header } = read;
      this.#metrics?.accepted.inc({ listener: this.options.name, command: header.command });
      // LOCAL: the balancer's own connection (a health check) keeps the balancer's address.
      this.#clients.set(raw, header.command === 'proxy' ? header.source.address : peer);
      this.tls.emit('connection', raw);
    });
  }

  #refuse(raw: Socket, peer: string, reason: ProxyRefusalReason): void {
    this.#metrics?.refused.inc({ listener: this.options.name, reason });
    this.options.log.warn({ listener: this.options.name, balancer: peer, reason }, 'connection from a trusted load balancer without a valid PROXY protocol v2 header; closed');
    raw.destroy();
  }
}
