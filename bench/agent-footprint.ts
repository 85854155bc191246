import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, type Identity, QueueDatabase, Validator, resolveConfig, seededRng } from '../packages/agent/src/index.js';
import { newAdminKey } from '../packages/server/src/testing/harness.js';
import { makeDeviceKeys } from '../packages/server/src/testing/devices.js';
import { apiClient, must } from './bulwark-api.js';
import { spawnBulwark } from './bulwark.js';
import { firstJsonLine, installCleanup, progress, startTsChild, stopChild, tempDir } from './children.js';
import { delay, pool, round } from './proc.js';

/**
 * node --import tsx bench/agent-footprint.ts [--agents 1000] [--mode both|own|shared] [--readings 1]
 *
 * What one device agent costs when many run in one process (`bulwark simulate`, a gateway):
 * a real Bulwark server in a child process (bench/bulwark-server.ts, embedded SQLite, port 0),
 * --agents devices onboarded through its batch endpoint (own P-256 key and CSR each), then for
 * each mode a fresh child process that runs that many real `Agent`s of @bulwark/agent:
 *  - own: as a device runs it, each agent with its own `<dataDir>/queue.db` and its own Ajv;
 *  - shared: every agent's queue in one QueueDatabase, one Validator for all (deps.queues, deps.validator).
 * Every agent registers a command and a configuration schema (as the simulator does), connects
 * over mutual TLS, sends --readings readings and waits for their PUBACKs. Measured in the agent
 * process after a full GC, against the same process before the agents were built (the device
 * identities already loaded): JS heap, external memory, RSS and open file descriptors
 * (/proc/self/fd), once the agents are built (not connected) and once all are online and drained.
 */

interface Snapshot {
  heapUsed: number;
  external: number;
  rss: number;
  fds: number;
}
interface ChildResult {
  mode: string;
  agents: number;
  base: Snapshot;
  built: Snapshot;
  online: Snapshot;
  connectS: number;
  drainS: number;
  commits: number | null;
}

const BLINK = { type: 'object', required: ['times'], properties: { times: { type: 'integer', minimum: 1, maximum: 10 } } };
const SETTINGS = { type: 'object', properties: { intervalS: { type: 'integer', minimum: 1, maximum: 3600 } } };
const SCHEMA = { $id: 'footprint@1', type: 'object', required: ['v'], additionalProperties: false, properties: { v: { type: 'number', 'x-unit': 'count' } } };

function snapshot(): Snapshot {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the agent process with --expose-gc');
  gc();
  gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, rss: m.rss, fds: readdirSync('/proc/self/fd').length };
}

async function waitFor(what: string, done: () => boolean, timeoutMs: number, say: () => string): Promise<number> {
  const t0 = performance.now();
  let last = t0;
  while (!done()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}: ${say()}`);
    if (performance.now() - last > 5000) {
      last = performance.now();
      process.stderr.write(`  ${what}: ${say()}\n`);
    }
    await delay(100);
  }
  return (performance.now() - t0) / 1000;
}

/** The agent process: builds the agents, connects them, sends, measures, prints one JSON line. */
async function runAgents(): Promise<void> {
  const o = JSON.parse(process.env.BENCH_FOOTPRINT_CHILD ?? '{}') as { mode: 'own' | 'shared'; fleet: string; url: string; dir: string; readings: number };
  const fleet = JSON.parse(readFileSync(o.fleet, 'utf8')) as { ca: string; devices: { id: string; keyPem: string; certPem: string; serial: string; notBefore: number; notAfter: number }[] };
  const identities = fleet.devices.map((d): [string, Identity] => [d.id, { keyPem: d.keyPem, certPem: d.certPem, caPem: fleet.ca, serial: d.serial, notBefore: d.notBefore, notAfter: d.notAfter }]);
  const n = identities.length;
  const base = snapshot();
  const shared = o.mode === 'shared' ? { queues: new QueueDatabase(join(o.dir, 'queues.db')), validator: new Validator() } : undefined;
  const agents = identities.map(([id, identity], i) => {
    const dataDir = join(o.dir, id);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const config = resolveConfig({
      deviceId: id,
      dataDir,
      mqtt: { url: o.url, keepaliveS: 60, connectTimeoutMs: 30_000 },
      logs: { level: 'error' },
      health: { intervalMs: 600_000 },
      reconnect: { baseMs: 500, capMs: 10_000, stableAfterMs: 5_000, refusedDelayMs: 30_000 },
    });
    const agent = new Agent(config, identity, { rng: seededRng(i + 1), logSink: () => undefined, ...shared });
    agent.onCommand('blink', BLINK, () => ({ ok: true }));
    agent.onConfig(SETTINGS, () => undefined);
    return agent;
  });
  const built = snapshot();
  for (const a of agents) a.start();
  const online = () => agents.filter((a) => a.status().state === 'online').length;
  const connectS = await waitFor(
    'online',
    () => online() === n,
    600_000,
    () => `${online()} of ${n}`,
  );
  await Promise.all(agents.flatMap((a) => Array.from({ length: o.readings }, (_, v) => a.send('footprint@1', { v }))));
  // Each agent's boot event and its readings acknowledged, nothing on the wire.
  const drained = () => agents.filter((a) => a.status().queue.acked >= o.readings + 1 && a.status().queue.depth === 0 && a.status().queue.inflight === 0).length;
  const drainS = await waitFor(
    'drained',
    () => drained() === n,
    600_000,
    () => `${drained()} of ${n}`,
  );
  await delay(2000);
  const after = snapshot();
  const result: ChildResult = { mode: o.mode, agents: n, base, built, online: after, connectS, drainS, commits: shared?.queues.commits ?? null };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await Promise.all(agents.map((a) => a.close()));
  shared?.queues.close();
}

/** Onboards `n` devices with their own keys; returns the file the agent processes read. */
async function onboard(api: ReturnType<typeof apiClient>, n: number, dir: string): Promise<string> {
  const ids = Array.from({ length: n }, (_, i) => `fp-${String(i).padStart(5, '0')}`);
  const keys = await pool(ids, 32, (id) => makeDeviceKeys(id));
  const devices = [];
  for (let start = 0; start < n; start += 1000) {
    const batch = ids.slice(start, start + 1000);
    const res = await must('batch onboarding', 201, api('POST', '/api/v1/devices/batch', { devices: batch.map((id, k) => ({ id, csr: keys[start + k]?.csrPem })) }));
    for (const [k, d] of (res.devices as { id: string; certificate: string }[]).entries()) {
      const c = new X509Certificate(d.certificate);
      devices.push({ id: d.id, keyPem: keys[start + k]?.keyPem ?? '', certPem: d.certificate, serial: c.serialNumber.toLowerCase(), notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo) });
    }
    progress(`footprint: onboarded ${devices.length} of ${n}`);
  }
  const ca = await must('CA chain', 200, api('GET', '/api/v1/pki/ca.pem', undefined, false));
  const file = join(dir, 'fleet.json');
  writeFileSync(file, JSON.stringify({ ca, devices }));
  return file;
}

const kb = (bytes: number, n: number) => round(bytes / n / 1024, 1);

function table(results: ChildResult[]): string {
  const per = (r: ChildResult, at: 'built' | 'online', k: keyof Snapshot) => (k === 'fds' ? round((r[at][k] - r.base[k]) / r.agents, 2) : kb(r[at][k] - r.base[k], r.agents));
  const rows: [string, (r: ChildResult) => string | number][] = [
    ['JS heap KB / agent, built (not connected)', (r) => per(r, 'built', 'heapUsed')],
    ['RSS KB / agent, built (not connected)', (r) => per(r, 'built', 'rss')],
    ['JS heap KB / agent, online + drained', (r) => per(r, 'online', 'heapUsed')],
    ['external KB / agent, online + drained', (r) => per(r, 'online', 'external')],
    ['RSS KB / agent, online + drained (incl. its mTLS session)', (r) => per(r, 'online', 'rss')],
    ['open fds / agent, built', (r) => per(r, 'built', 'fds')],
    ['open fds / agent, online', (r) => per(r, 'online', 'fds')],
    ['all online after s', (r) => round(r.connectS, 1)],
    ['readings acknowledged after s', (r) => round(r.drainS, 1)],
    ['group commits of the shared file', (r) => r.commits ?? '-'],
  ];
  const head = `| ${results[0]?.agents ?? 0} agents in one process | ${results.map((r) => (r.mode === 'own' ? 'own queue.db + own Ajv' : 'shared QueueDatabase + Validator')).join(' | ')} |`;
  return [head, `|---|${results.map(() => '---:').join('|')}|`, ...rows.map(([name, f]) => `| ${name} | ${results.map(f).join(' | ')} |`)].join('\n');
}

async function main(): Promise<void> {
  const { values: o } = parseArgs({ options: { agents: { type: 'string', default: '1000' }, mode: { type: 'string', default: 'both' }, readings: { type: 'string', default: '1' } } });
  const n = Number(o.agents);
  const modes = o.mode === 'both' ? ['own', 'shared'] : [o.mode ?? ''];
  if (!Number.isInteger(n) || n < 1 || !modes.every((m) => m === 'own' || m === 'shared')) throw new Error('usage: --agents N --mode both|own|shared --readings N');
  installCleanup();
  const dir = tempDir('bulwark-footprint-');
  const adminKey = newAdminKey();
  const server = await spawnBulwark(join(dir, 'server'), adminKey, { rateLimit: { perAddressPerMinute: 100_000, perPrincipalPerMinute: 100_000 } }, []);
  const api = apiClient(server.url, adminKey);
  await must('register schema', 201, api('POST', '/api/v1/schemas', SCHEMA));
  progress(`footprint: server up (gateway on port ${server.mqttPort}); onboarding ${n} devices`);
  const fleet = await onboard(api, n, dir);
  const results: ChildResult[] = [];
  // An agent of its own queue holds 4 descriptors online (queue.db, its WAL and shared memory, the socket).
  const fdLimit = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
  for (const mode of modes) {
    if (mode === 'own' && 4 * n + 100 > fdLimit) {
      progress(`footprint: own queues skipped: ${n} agents would need about ${4 * n} open files, over this process's limit of ${fdLimit}`);
      continue;
    }
    const agentsDir = join(dir, mode);
    mkdirSync(agentsDir);
    progress(`footprint: ${n} agents, ${mode} queue and validator`);
    const child = startTsChild('./agent-footprint.ts', ['--expose-gc'], {
      BENCH_FOOTPRINT_CHILD: JSON.stringify({ mode, fleet, url: `mqtts://127.0.0.1:${server.mqttPort}`, dir: agentsDir, readings: Number(o.readings) }),
    });
    results.push(await firstJsonLine<ChildResult>(child, `agents (${mode})`, 900_000));
    await stopChild(child, 60_000);
  }
  await stopChild(server.child, 30_000);
  console.log(table(results));
  const shared = results.find((r) => r.mode === 'shared');
  if (shared) {
    const rss = (shared.online.rss - shared.base.rss) / shared.agents / 1024;
    console.log(`\nsimulator target ≤ 150 KB per virtual device including its mTLS session: ${rss <= 150 ? 'MET' : 'NOT MET'} (${round(rss, 1)} KB RSS per agent, shared)`);
  }
}

if (process.env.BENCH_FOOTPRINT_CHILD) await runAgents();
else await main();
