import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect } from '../packages/server/src/testing/devices.js';
import type { Broker, Identity } from './broker.js';
import { type Pki, deviceId } from './certs.js';
import { firstJsonLine, startChild, startTsChild, stopChild } from './children.js';

/** The two pass-through reference brokers: Debian's Mosquitto and plain Aedes, both over mutual TLS. */

const MOSQUITTO = '/usr/sbin/mosquitto';

/** A port that was free a moment ago (Mosquitto cannot bind port 0 and report it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function common(name: 'mosquitto' | 'aedes', pid: number, port: number, pki: Pki, stop: () => Promise<void>, notes: string[]): Broker {
  const device = (i: number): Identity => ({ id: deviceId(i), creds: pki.clients[i % pki.clients.length] ?? pki.subscriber });
  return {
    name,
    pid,
    port,
    notes,
    device,
    stop,
    // Idle sessions share the load devices' certificates (distinct client ids); the TLS cost per socket is the same.
    sessionIdentities: async (n) => Array.from({ length: n }, (_, i) => ({ id: `bench-s${String(i).padStart(5, '0')}`, creds: device(i).creds })),
    async liveTap(ids, protocol, onMessage) {
      const client = await connect({ host: '127.0.0.1', port, protocol: 'mqtts', protocolVersion: protocol, clientId: 'bench-subscriber', ...pki.subscriber, rejectUnauthorized: true, reconnectPeriod: 0 });
      client.on('message', (_topic, payload) => onMessage((JSON.parse(payload.toString()) as { id: string }).id));
      await client.subscribeAsync(
        ids.map((id) => `devices/${id}/telemetry`),
        { qos: 0 },
      );
      return () => client.endAsync(true);
    },
  };
}

export async function startMosquitto(dir: string, pki: Pki): Promise<Broker> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  chmodSync(dir, 0o755);
  writeFileSync(
    conf,
    [
      'per_listener_settings false',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages false',
      `listener ${port} 127.0.0.1`,
      `cafile ${pki.caFile}`,
      `certfile ${pki.serverCertFile}`,
      `keyfile ${pki.serverKeyFile}`,
      'require_certificate true',
      'use_identity_as_username true',
      'allow_anonymous false',
      '',
    ].join('\n'),
  );
  const child = startChild(MOSQUITTO, ['-c', conf], {}, 'pipe');
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`mosquitto exited (${code}): ${log.slice(-500)}`));
    child.once('exit', onExit);
    child.stderr?.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000);
      if (/running/.test(log)) {
        child.off('exit', onExit);
        resolve();
      }
    });
  });
  const version = /mosquitto version (\S+)/.exec(log)?.[1] ?? '?';
  return common('mosquitto', child.pid as number, port, pki, () => stopChild(child), [`mosquitto ${version}, persistence off, require_certificate, use_identity_as_username, otherwise its defaults (Nagle on)`]);
}

export async function startAedes(pki: Pki): Promise<Broker> {
  const child = startTsChild('./aedes-server.ts', [], { BENCH_TLS_CA: pki.caFile, BENCH_TLS_CERT: pki.serverCertFile, BENCH_TLS_KEY: pki.serverKeyFile });
  const { port, pid } = await firstJsonLine<{ port: number; pid: number }>(child, 'aedes');
  const version = (JSON.parse(readFileSync(new URL('../node_modules/aedes/package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return common('aedes', pid, port, pki, () => stopChild(child), [`aedes ${version} on tls.createServer (Node ${process.version}), no hooks, in-memory persistence, MQTT 3.1.1 only`]);
}
