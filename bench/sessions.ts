import { type SecureContext, type TLSSocket, connect as tlsConnect, createSecureContext } from 'node:tls';
import type { Broker, Identity } from './broker.js';
import { progress } from './children.js';
import { CpuWindow, pool, round, rssKb, settledRssKb } from './proc.js';

/**
 * Idle sessions and the connect storm, with bare TLS sockets speaking just enough MQTT 3.1.1
 * (CONNECT, CONNACK, DISCONNECT): mqtt.js clients would cost the load generator far more
 * memory and CPU per session than the broker spends, and neither number is about the client.
 */

function connectPacket(clientId: string, keepaliveS: number): Buffer {
  const id = Buffer.from(clientId, 'utf8');
  const variable = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, keepaliveS >> 8, keepaliveS & 0xff]);
  const remaining = variable.length + 2 + id.length;
  if (remaining > 127) throw new Error('client id too long for this minimal encoder');
  return Buffer.concat([Buffer.from([0x10, remaining]), variable, Buffer.from([id.length >> 8, id.length & 0xff]), id]);
}

const DISCONNECT = Buffer.from([0xe0, 0x00]);

/**
 * One client TLS context per certificate, made once: passing PEM strings to every
 * tls.connect would parse the key and CA again for each connection and make the load
 * generator, not the broker, the limit of the connect storm. A context does not resume
 * sessions by itself, so every handshake stays a full one.
 */
const contexts = new WeakMap<Identity['creds'], SecureContext>();
function contextOf(who: Identity): SecureContext {
  let c = contexts.get(who.creds);
  if (!c) contexts.set(who.creds, (c = createSecureContext({ key: who.creds.key, cert: who.creds.cert, ca: who.creds.ca })));
  return c;
}

/** A full mTLS handshake (no session resumption) and an MQTT CONNECT; resolves on CONNACK 0. */
export function mqttSession(port: number, who: Identity, keepaliveS = 3600, timeoutMs = 30_000): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, secureContext: contextOf(who), rejectUnauthorized: true });
    const timer = setTimeout(() => fail(new Error(`${who.id}: no CONNACK within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('close', () => fail(new Error(`${who.id}: closed before CONNACK`)));
    socket.once('secureConnect', () => socket.write(connectPacket(who.id, keepaliveS)));
    socket.once('data', (buf: Buffer) => {
      if (buf[0] !== 0x20 || buf[3] !== 0) return fail(new Error(`${who.id}: CONNACK refused (${buf.toString('hex')})`));
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.removeListener('error', fail);
      socket.on('error', () => undefined);
      socket.resume();
      resolve(socket);
    });
  });
}

function hangUp(socket: TLSSocket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
    socket.end(DISCONNECT);
  });
}

export interface IdleResult {
  sessions: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  kbPerSession: number;
  connectSeconds: number;
  /** Server CPU per session set-up while opening them (handshake + CONNECT + the broker's admission work). */
  serverCpuMsPerSession: number;
}

/** Opens `n` idle sessions, measures the broker's RSS growth, then closes them. */
export async function idleSessions(broker: Broker, n: number, concurrency = 32): Promise<IdleResult> {
  const who = await broker.sessionIdentities(n);
  const before = await settledRssKb(broker.pid);
  progress(`${broker.name}: opening ${n} idle mTLS sessions (RSS before ${round(before / 1024)} MB)`);
  const cpu = new CpuWindow(broker.pid);
  const t0 = performance.now();
  let opened = 0;
  const every = Math.max(1000, Math.ceil(n / 10));
  const sockets = await pool(who, concurrency, async (w) => {
    const socket = await mqttSession(broker.port, w);
    opened += 1;
    if (opened % every === 0 && opened < n) progress(`${broker.name}: ${opened}/${n} idle sessions open, RSS ${round(rssKb(broker.pid) / 1024)} MB`);
    return socket;
  });
  const connectSeconds = (performance.now() - t0) / 1000;
  const c = cpu.end();
  const after = await settledRssKb(broker.pid, 10_000);
  progress(`${broker.name}: ${n} sessions open in ${connectSeconds.toFixed(1)} s, RSS ${round(after / 1024)} MB; closing`);
  await pool(sockets, 256, hangUp);
  return {
    sessions: n,
    rssBeforeMb: round(before / 1024),
    rssAfterMb: round(after / 1024),
    kbPerSession: round((after - before) / n, 1),
    connectSeconds: round(connectSeconds, 2),
    serverCpuMsPerSession: round(c.serverCpuMs / n, 2),
  };
}

export interface StormResult {
  handshakes: number;
  perSec: number;
  serverCpuMsPerHandshake: number;
  loadGenCores: number;
  serverCores: number;
  otherCores: number;
}

/**
 * `n` full mTLS handshakes + CONNECT/CONNACK + DISCONNECT, `concurrency` at a time; worker
 * `w` always uses load device `w`, so no two live sessions share a client id.
 */
export async function connectStorm(broker: Broker, n: number, concurrency: number): Promise<StormResult> {
  let left = n;
  const cpu = new CpuWindow(broker.pid);
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      const who = broker.device(w);
      while (left > 0) {
        left -= 1;
        await hangUp(await mqttSession(broker.port, who));
      }
    }),
  );
  const c = cpu.end();
  return {
    handshakes: n,
    perSec: round(n / (c.wallMs / 1000), 0),
    serverCpuMsPerHandshake: round(c.serverCpuMs / n, 2),
    loadGenCores: round(c.loadGenCores, 2),
    serverCores: round(c.serverCores, 2),
    otherCores: round(c.otherCores, 2),
  };
}
