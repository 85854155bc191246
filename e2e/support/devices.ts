import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type CliResult, runCli, tempDir } from './cli.js';
import { startServer } from './server.js';
import { type ToolProcess, type ToolResult, runTool, spawnTool } from './tools.js';

/**
 * A running platform with a logged-in CLI, and the stock MQTT clients (mosquitto_pub,
 * mosquitto_sub, mosquitto_rr) pointed at its gateway with a device's files.
 */

export interface Platform {
  readonly url: string;
  readonly mqttPort: number;
  /** A scratch directory removed after the test. */
  readonly dir: string;
  /** Runs `bulwark ARGS` with the admin's saved login (or `env` instead). */
  bulwark(args: readonly string[], env?: Readonly<Record<string, string>>): Promise<CliResult>;
  /** The same, failing the test unless it exits 0. */
  ok(args: readonly string[]): Promise<CliResult>;
}

export const show = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

export async function startPlatform(t: TestContext, serverEnv: Readonly<Record<string, string>> = {}): Promise<Platform> {
  const dir = tempDir(t, 'bulwark-devices-');
  const admin = { BULWARK_CLI_CONFIG: join(dir, 'cli', 'credentials.json') };
  const server = await startServer(t, join(dir, 'data'), { env: { ...admin, ...serverEnv } });
  assert.ok(server.adminKey, server.banner);
  assert.ok(server.mqttPort, `no MQTT address in the banner:\n${server.banner}`);
  const bulwark = (args: readonly string[], env: Readonly<Record<string, string>> = admin) => runCli(t, args, { env });
  const ok = async (args: readonly string[]) => {
    const r = await bulwark(args);
    assert.equal(r.code, 0, `bulwark ${args.join(' ')}: ${show(r)}`);
    return r;
  };
  await ok(['login', '--url', server.url, '--key', server.adminKey]);
  return { url: server.url, mqttPort: server.mqttPort, dir, bulwark, ok };
}

/** The files `bulwark devices enroll --out DIR` writes. */
export interface DeviceFiles {
  readonly dir: string;
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
}

export const filesIn = (dir: string): DeviceFiles => ({ dir, key: join(dir, 'device.key'), cert: join(dir, 'device.crt'), ca: join(dir, 'ca.crt') });

/** Connection options of the mosquitto clients: MQTT 3.1.1 over TLS with a client certificate. */
export function mqttArgs(p: Platform, clientId: string, f: Partial<DeviceFiles>): string[] {
  const tls = [
    ['--cafile', f.ca],
    ['--cert', f.cert],
    ['--key', f.key],
  ].flatMap(([flag, file]) => (file === undefined ? [] : [flag as string, file]));
  return ['-h', '127.0.0.1', '-p', String(p.mqttPort), '-V', 'mqttv311', '-i', clientId, ...tls];
}

/** mosquitto_pub, QoS 1 (so exit 0 means the gateway acknowledged the message). */
export function publish(t: TestContext, p: Platform, clientId: string, f: Partial<DeviceFiles>, topic = `devices/${clientId}/telemetry`): Promise<ToolResult> {
  return runTool(t, 'mosquitto_pub', [...mqttArgs(p, clientId, f), '-q', '1', '-t', topic, '-m', JSON.stringify({ id: `m-${Date.now()}`, seq: 1, ts: Date.now(), data: { temp_c: 21.5 } })]);
}

/**
 * A live mosquitto_sub session on the device's own tree, once the gateway has acknowledged
 * the subscription (-d prints the packets; stdbuf makes its stdout line-buffered in a pipe).
 */
export async function subscriber(t: TestContext, p: Platform, id: string, f: DeviceFiles): Promise<ToolProcess> {
  const sub = spawnTool(t, 'stdbuf', ['-oL', 'mosquitto_sub', '-d', ...mqttArgs(p, id, f), '-t', `devices/${id}/#`]);
  await sub.waitFor(/received SUBACK/, 10_000);
  return sub;
}

/** Registers and enrolls a device through the CLI; returns its files. */
export async function enrolled(p: Platform, id: string): Promise<DeviceFiles> {
  await p.ok(['devices', 'create', id]);
  const files = filesIn(join(p.dir, id));
  await p.ok(['devices', 'enroll', id, '--out', files.dir]);
  return files;
}

/** A P-256 key and CSR made by OpenSSL itself. */
export async function opensslCsr(t: TestContext, dir: string, name: string): Promise<{ key: string; csr: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const r = await runTool(t, 'openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  assert.equal(r.code, 0, r.stderr);
  return { key, csr };
}
