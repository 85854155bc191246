import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { type TestContext, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';

/**
 * Test-only: the cluster engines a suite starts for itself — `nats-server` with JetStream and
 * `redis-server` — on free loopback ports, stopped by pid when the suite ends. Without the
 * Debian package a developer's run skips the suite (and says so on stderr); a CI run
 * (CI=true) fails instead, so a missing engine is never a silent pass.
 */

export type Engine = 'nats-server' | 'redis-server' | 'haproxy';

const PACKAGES: Record<Engine, string> = { 'nats-server': 'nats-server', 'redis-server': 'redis-server', haproxy: 'haproxy' };

function installed(command: Engine): boolean {
  return spawnSync(command, [command === 'haproxy' ? '-v' : '--version'], { stdio: 'ignore' }).status === 0;
}

/** Declares a suite that needs `engines`; `body` is not called when the suite is skipped. */
export function describeWith(name: string, engines: readonly Engine[], body: () => void): void {
  const missing = engines.filter((e) => !installed(e));
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const reason = `${name}: SKIPPED, ${missing.join(' and ')} not installed (apt-get install ${missing.map((m) => PACKAGES[m]).join(' ')})`;
  if (process.env.CI === 'true') {
    describe(name, () => {
      it(`needs ${missing.join(', ')}`, () => {
        throw new Error(`${reason}; CI=true: the cluster suites must run in CI`);
      });
    });
    return;
  }
  process.stderr.write(`${reason}\n`);
  describe(name, { skip: reason }, () => undefined);
}

/** A port free on 127.0.0.1 a moment ago (the engines bind it themselves). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RunningEngine {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Stops the process (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, for failover tests. */
  kill(): Promise<void>;
}

/** Starts `command` and resolves once a line of its output contains `ready`. */
async function startProcess(command: Engine, args: string[], ready: string, url: string, port: number, cleanup: () => void): Promise<RunningEngine> {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    if (ready === '') {
      // No banner to wait for (HAProxy in the foreground prints nothing when all is well).
      child.once('spawn', () => resolve());
      child.once('error', reject);
      return;
    }
    const timer = setTimeout(() => reject(new Error(`${command} did not start within 15 s: ${output.slice(-2000)}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code} before it was ready: ${output.slice(-2000)}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  const pid = child.pid ?? 0;
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, sig);
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(force);
    }
    cleanup();
  };
  return { url, port, pid, stop: () => signal('SIGTERM'), kill: () => signal('SIGKILL') };
}

/** A single `nats-server -js` on a free port with its own store directory (`tls`: PEM files, clients must present a certificate). */
export async function startNats(tls?: EngineTlsFiles): Promise<RunningEngine> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-nats-'));
  const tlsArgs = tls ? ['--tls', '--tlscert', tls.cert, '--tlskey', tls.key, '--tlsverify', '--tlscacert', tls.ca] : [];
  return startProcess('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir, ...tlsArgs], 'Server is ready', `${tls ? 'tls' : 'nats'}://127.0.0.1:${port}`, port, () => rmSync(dir, { recursive: true, force: true }));
}

/**
 * A single `nats-server` with JetStream on a free port, started from a config file holding
 * `config` besides the listen address and store directory; the `includes` files are copied
 * beside it (nats-server reads `include` paths relative to the including file). For operator
 * mode (docs/guides/cluster.md).
 */
export async function startNatsWithConfig(config: string, includes: readonly string[] = []): Promise<RunningEngine> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-nats-'));
  for (const file of includes) copyFileSync(file, join(dir, basename(file)));
  const file = join(dir, 'nats.conf');
  writeFileSync(file, `listen: 127.0.0.1:${port}\njetstream { store_dir: ${JSON.stringify(join(dir, 'js'))} }\n${config}\n`);
  return startProcess('nats-server', ['-c', file], 'Server is ready', `nats://127.0.0.1:${port}`, port, () => rmSync(dir, { recursive: true, force: true }));
}

export interface NatsCluster {
  readonly servers: readonly RunningEngine[];
  /** Every server's client URL, comma-separated (what `--bus` takes). */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * `size` nats-servers with JetStream, routed to one another on free loopback ports; resolves
 * once the cluster has elected its JetStream metadata leader (buckets can be made then).
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
  const servers = await Promise.all(
    ports.map((port, i) => {
      const dir = mkdtempSync(join(tmpdir(), 'bulwark-nats-'));
      return startProcess(
        'nats-server',
        ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir, '-n', `bulwark-nats-${i + 1}`, '--cluster_name', 'bulwark-test', '--cluster', `nats://127.0.0.1:${routePorts[i]}`, '--routes', routes],
        'Server is ready',
        `nats://127.0.0.1:${port}`,
        port,
        () => rmSync(dir, { recursive: true, force: true }),
      );
    }),
  );
  const url = servers.map((s) => s.url).join(',');
  const nc = await natsConnect({ servers: servers.map((s) => s.url) });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await (await jetstreamManager(nc)).getAccountInfo();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the NATS cluster elected no JetStream leader within 30 s: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nc.close();
  }
  return { servers, url, stop: async () => void (await Promise.all(servers.map((s) => s.stop()))) };
}

/** A `redis-server` on a free port (or `port`, to restart one), no persistence (`tls`: TLS only, clients must present a certificate). */
export async function startRedis(port?: number, tls?: EngineTlsFiles): Promise<RunningEngine> {
  port ??= await freePort();
  const listen = tls ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'yes'] : ['--port', String(port)];
  return startProcess('redis-server', [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], 'Ready to accept connections', `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`, port, () => undefined);
}

/** PEM files for an engine's TLS: its certificate and key, and the CA its clients' certificates must chain to. */
export interface EngineTlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface Backend {
  readonly name: string;
  /** The port traffic goes to (an MQTT listener). */
  readonly port: number;
  /** The HTTP port whose /readyz decides whether the backend gets traffic. */
  readonly healthPort: number;
}

/**
 * HAProxy in TCP mode in front of `backends`, as docs/guides/cluster.md ships it: least
 * connections, health from each node's /readyz every 500 ms, a connection to a dead node
 * redispatched to another before the client sees it. A node marked down keeps its
 * established sessions (no `on-marked-down shutdown-sessions`): a draining node moves them
 * itself, spread out, and a dead node's connections are gone anyway.
 */
export async function startHaproxy(backends: readonly Backend[], options: HaproxyOptions = {}): Promise<RunningEngine & { readonly config: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-haproxy-'));
  const config = haproxyConfig(port, backends, options);
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  const engine = await startProcess('haproxy', ['-f', file, '-db'], '', `127.0.0.1:${port}`, port, () => rmSync(dir, { recursive: true, force: true }));
  await waitForPort(port);
  return { ...engine, config };
}

export interface HaproxyOptions {
  /** Start every connection to a node with a PROXY protocol v2 header naming the device's address (`send-proxy-v2`; the nodes need gateway.proxyProtocolFrom). */
  readonly sendProxyV2?: boolean;
}

/** The HAProxy configuration for a device listener in front of Bulwark nodes. */
export function haproxyConfig(port: number, backends: readonly Backend[], options: HaproxyOptions = {}): string {
  return [
    'global',
    // Each connection holds two descriptors; this machine allows 20,000.
    '  maxconn 9000',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 10m',
    '  timeout server 10m',
    '  retries 3',
    '  option redispatch',
    'frontend devices',
    `  bind 127.0.0.1:${port}`,
    '  default_backend bulwark',
    'backend bulwark',
    '  balance leastconn',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    ...backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port} check port ${b.healthPort} inter 500 fall 2 rise 2${options.sendProxyV2 ? ' send-proxy-v2' : ''}`),
    '',
  ].join('\n');
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Starts an engine for the suite and stops it when the test context ends. */
export async function engineFor(t: TestContext, start: () => Promise<RunningEngine>): Promise<RunningEngine> {
  const engine = await start();
  t.after(() => engine.stop());
  return engine;
}
