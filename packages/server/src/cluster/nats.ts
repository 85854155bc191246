import { type Logger, PlatformError } from '@bulwark/core';
import type { JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { type NatsConnection, connect, credsAuthenticator } from '@nats-io/transport-node';

/** TLS to a cluster engine (NATS, Redis): PEM contents. */
export interface EngineTls {
  /** CA certificates to verify the server with (else the system's). */
  readonly ca?: string;
  /** Client certificate and key, for servers that require one. */
  readonly cert?: string;
  readonly key?: string;
}

/** How long a start waits for NATS before it fails naming it. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * One node's connection to NATS, shared by the bus, the session registry and the node
 * heartbeat. It reconnects for ever; while it is down `connected` is false, which fails
 * `/readyz` and refuses new device sessions (acting on stale state would be worse), and
 * every reconnect is announced so that the parts that may have missed something catch up.
 */
export class NatsLink {
  #connected = true;
  readonly #onReconnect = new Set<() => void>();
  readonly #watching: Promise<void>;

  private constructor(
    readonly nc: NatsConnection,
    readonly servers: string,
    private readonly log: Logger,
  ) {
    this.#watching = this.#watch();
  }

  /**
   * Connects to the first answering server of `servers` (comma-separated nats:// or tls://
   * URLs). TLS is used when a URL says tls:// or `tls` is given (CA to verify the servers,
   * and a client certificate for servers that ask for one). `creds`: the text of a `.creds`
   * file (user JWT and seed) for servers in operator mode.
   */
  static async connect(servers: string, name: string, log: Logger, tls?: EngineTls, creds?: string): Promise<NatsLink> {
    const given = servers
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const shown = given.map(redactUrl).join(',');
    const secure = tls !== undefined || given.some((u) => u.startsWith('tls://'));
    const list = given.map((u) => u.replace(/^tls:\/\//, 'nats://'));
    try {
      // noEcho: a node does not hear its own publishes on core subjects (it ran its own handlers already).
      // noAsyncTraces: the client would build an Error (a stack trace) for every request to
      // name its caller if it failed — 15 % of a cluster node's CPU at 5k readings/s, one
      // request per reading appended to the stream. Errors keep their messages.
      const nc = await connect({
        servers: list,
        name,
        noEcho: true,
        noAsyncTraces: true,
        timeout: CONNECT_TIMEOUT_MS,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        waitOnFirstConnect: false,
        ...(creds !== undefined ? { authenticator: credsAuthenticator(new TextEncoder().encode(creds)) } : {}),
        ...(secure ? { tls: { ...(tls?.ca ? { ca: tls.ca } : {}), ...(tls?.cert ? { cert: tls.cert } : {}), ...(tls?.key ? { key: tls.key } : {}) } } : {}),
      });
      return new NatsLink(nc, shown, log);
    } catch (err) {
      throw new PlatformError('BULWARK_ERR_BUS_UNAVAILABLE', `NATS at ${shown} is unreachable: ${(err as Error).message}`, { cause: err });
    }
  }

  get connected(): boolean {
    return this.#connected && !this.nc.isClosed();
  }

  /** Calls `fn` after every reconnect; returns a function that removes it. */
  onReconnect(fn: () => void): () => void {
    this.#onReconnect.add(fn);
    return () => this.#onReconnect.delete(fn);
  }

  async close(): Promise<void> {
    // A drain needs the server: tried only while connected, and for a bounded time. Whatever
    // came of it (drained, failed, still waiting), what is not closed yet is closed now.
    if (!this.nc.isClosed() && this.#connected) await settledWithin(this.nc.drain(), STOP_STEP_MS, 'drain', this.log);
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
    await this.#watching;
  }

  async #watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.#connected = false;
        this.log.warn({ server: redactUrl(String(s.server)) }, 'NATS connection lost: not admitting new device sessions until it is back');
      } else if (s.type === 'reconnect') {
        this.#connected = true;
        this.log.info({ server: redactUrl(String(s.server)) }, 'NATS connection back');
        for (const fn of this.#onReconnect) fn();
      }
    }
  }
}

/** How long a stopping node waits for one courtesy to NATS (a lease or heartbeat given back, a drain). */
export const STOP_STEP_MS = 3_000;

/**
 * Waits for `step` at most `ms`; false (logged) when it did not settle by then. For a node's
 * stop with NATS away: what it gives back (leases, its heartbeat) expires on its own, and a
 * request to a server that is gone waits for the client's reconnects, minutes in all.
 */
export async function settledWithin(step: Promise<unknown>, ms: number, what: string, log: Logger): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    step.then(
      () => true,
      () => true,
    ),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  if (!settled) log.warn({ step: what, waitedMs: ms }, 'stopping: NATS did not answer in time; going on without it');
  return settled;
}

/** How long a JetStream write waits out a leader election (a NATS server of the cluster died) before it fails. */
export const ELECTION_WAIT_MS = 8_000;

/**
 * Runs a JetStream write, retrying it while the stream has no leader: after the loss of a NATS
 * server its replicated streams elect a new one within seconds, and until then writes find
 * "no responders" or time out. A NATS cluster that is still forming (servers started together,
 * not all of them known to the meta leader yet) answers "no suitable peers for placement" to a
 * replicated stream's creation for the same few seconds. Other errors, and a wait past
 * `budgetMs`, fail as they are.
 */
export async function whileElecting<T>(write: () => Promise<T>, budgetMs = ELECTION_WAIT_MS): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let pause = 100; ; pause = Math.min(pause * 2, 1_000)) {
    try {
      return await write();
    } catch (err) {
      const text = `${(err as Error).name} ${(err as Error).message}`.toLowerCase();
      const electing = text.includes('no responders') || text.includes('jetstreamnotenabled') || text.includes('timeout') || text.includes('no suitable peers');
      if (!electing || Date.now() + pause > deadline) throw err;
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

/** A URL without its password, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/**
 * The current value of `key` in KV bucket `bucket`, read from the stream's leader; null when
 * the key has none (never written, deleted or purged). Not `kv.get`: that is a direct read any
 * replica answers, and right after a NATS server died a lagging replica answered "no such
 * key" for keys written a moment before. A NATS error rejects.
 */
export async function readKvFromLeader(jsm: JetStreamManager, bucket: string, key: string): Promise<StoredMsg | null> {
  const e = await jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.${key}` });
  if (!e || e.data.length === 0 || ['DEL', 'PURGE'].includes(e.header?.get('KV-Operation') ?? '')) return null;
  return e;
}
