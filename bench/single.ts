import { connect } from '../packages/server/src/testing/devices.js';
import { type Broker, type Protocol, protocolName } from './broker.js';
import { progress } from './children.js';
import { delay, round } from './proc.js';

/**
 * One device publishing QoS 1 as fast as it can against Bulwark with default settings: MQTT
 * 3.1.1 keeps 1,000 publishes unacknowledged (it is told no limit), MQTT 5 keeps to the
 * Receive Maximum the server announces. It publishes for `seconds`, then waits for every
 * PUBACK. The device must never be disconnected, every message must be stored once, and its
 * rate, (acknowledged - burst) / elapsed, must be held to the configured bound: the bucket is
 * full (burst) at the start, so the rate can pass the bound only if the bound leaks.
 */

export interface SingleResult {
  protocol: Protocol;
  window: number;
  sent: number;
  acked: number;
  errors: number;
  /** Connections lost on the client side, and disconnects the server counted. */
  closes: number;
  serverDisconnects: number;
  stored: number;
  duplicates: number;
  elapsedS: number;
  ratePerSec: number;
  boundPerSec: number;
  burst: number;
  held: number;
}

export async function singleDevice(broker: Broker, protocol: Protocol, seconds: number, boundPerSec: number, burst: number, receiveMaximum: number): Promise<SingleResult> {
  const who = broker.device(0);
  const window = protocol === 5 ? receiveMaximum : 1000;
  const client = await connect({
    host: '127.0.0.1',
    port: broker.port,
    protocol: 'mqtts',
    protocolVersion: protocol,
    clientId: who.id,
    ...who.creds,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    connectTimeout: 20_000,
    keepalive: 60,
    clean: true,
  });
  let closes = 0;
  client.on('close', () => {
    closes += 1;
  });
  client.on('error', () => undefined);
  const before = await broker.counts?.();
  const topic = `devices/${who.id}/telemetry`;
  const tag = `one${protocol}-${Date.now()}`;
  let sent = 0;
  let acked = 0;
  let errors = 0;
  let inflight = 0;
  let running = true;
  let lastAck = performance.now();
  let settle: () => void = () => undefined;
  const settled = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const pump = () => {
    while (running && inflight < window && !client.disconnected) {
      sent += 1;
      inflight += 1;
      const payload = `{"id":"${tag}-${sent}","seq":${sent},"ts":${Date.now()},"schema":"bench@1","data":{"v":${sent}}}`;
      client.publish(topic, payload, { qos: 1 }, (err) => {
        inflight -= 1;
        if (err) errors += 1;
        else {
          acked += 1;
          lastAck = performance.now();
        }
        if (running) pump();
        else if (inflight === 0) settle();
      });
    }
  };
  const what = `${broker.name}: one device flooding QoS 1 (${protocolName(protocol)}, ${window} unacknowledged)`;
  progress(`${what} for ${seconds} s`);
  const t0 = performance.now();
  pump();
  for (let s = 0; s < seconds; s += 10) {
    await delay(Math.min(10, seconds - s) * 1000);
    if (s + 10 < seconds) progress(`${what}: ${s + 10}/${seconds} s, ${acked} acknowledged, ${closes} disconnects`);
  }
  running = false;
  const tailS = Math.ceil(inflight / boundPerSec) + 30;
  progress(`${what}: stopped; waiting up to ${tailS} s for the last ${inflight} PUBACKs`);
  if (inflight > 0) await Promise.race([settled, delay(tailS * 1000)]);
  const elapsedS = (lastAck - t0) / 1000;
  // A PUBACK follows the commit, so the counters are complete now; read them before hanging up.
  const after = await broker.counts?.();
  const lost = closes;
  await client.endAsync(true).catch(() => undefined);
  const out = (k: string) => (after?.outcomes[k] ?? 0) - (before?.outcomes[k] ?? 0);
  return {
    protocol,
    window,
    sent,
    acked,
    errors,
    closes: lost,
    serverDisconnects: (after?.disconnects ?? 0) - (before?.disconnects ?? 0),
    stored: out('stored'),
    duplicates: out('duplicate'),
    elapsedS: round(elapsedS, 2),
    ratePerSec: round((acked - burst) / elapsedS, 1),
    boundPerSec,
    burst,
    held: (after?.held ?? 0) - (before?.held ?? 0),
  };
}
