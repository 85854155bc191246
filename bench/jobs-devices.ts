import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { type TLSSocket, connect as tlsConnect, createSecureContext } from 'node:tls';
import { type Packet, generate, parser } from 'mqtt-packet';

/**
 * The simulated devices of the jobs bench (bench/jobs.ts starts this file as a child process,
 * so that its 10,000 sockets count against its own open-files limit, not the server's).
 *
 * Each device is a real mTLS session to the gateway: a bare TLS socket speaking just enough
 * MQTT 3.1.1 through mqtt-packet (CONNECT, SUBSCRIBE to devices/{id}/twin/desired at QoS 1,
 * PUBACK for the server's QoS 1 publishes). On each desired configuration it answers at once
 * with a QoS 1 PUBLISH on devices/{id}/twin/reported:
 * {"version": v, "status": "applied", "config": <the config>, "ts": Date.now()}.
 *
 * Environment: BENCH_JOBS_PORT (the gateway), BENCH_JOBS_DEVICES (a JSON file {ca, devices:
 * [{id, key, cert}]}), BENCH_JOBS_CONCURRENCY (handshakes at once). It connects every device,
 * printing {"type":"progress"} lines and then {"type":"connected"}; a line {"cmd":"stats",
 * "versions":[1], "arrivals":true} on stdin is answered with a {"type":"stats"} line; when
 * stdin closes it disconnects every device and exits.
 */

interface DeviceIdentity {
  readonly id: string;
  readonly key: string;
  readonly cert: string;
}
interface Fleet {
  readonly ca: string;
  readonly devices: readonly DeviceIdentity[];
}

const port = Number(process.env.BENCH_JOBS_PORT);
const fleet = JSON.parse(readFileSync(process.env.BENCH_JOBS_DEVICES ?? '', 'utf8')) as Fleet;
const concurrency = Number(process.env.BENCH_JOBS_CONCURRENCY ?? 64);
const ATTEMPTS = 3;

const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** What the devices saw of one desired version. */
class VersionLog {
  received = 0;
  /** Desired publishes of this version a device had already had. */
  duplicates = 0;
  /** Reports of this version the gateway acknowledged. */
  acked = 0;
  first = Infinity;
  last = 0;
  /** Device id → when its desired publish arrived (ms since the epoch). */
  readonly arrivals = new Map<string, number>();
  /** Arrival of the desired publish → PUBACK of the report, ms. */
  readonly answerMs: number[] = [];
}

const versions = new Map<number, VersionLog>();
const logOf = (v: number) => versions.get(v) ?? versions.set(v, new VersionLog()).get(v)!;
const sockets: TLSSocket[] = [];
let [open, failed, dropped, retries, closing] = [0, 0, 0, 0, false];
const dropReasons = new Map<string, number>();
const errors: string[] = [];

function drop(reason: string): void {
  if (closing) return;
  dropped += 1;
  open -= 1;
  dropReasons.set(reason, (dropReasons.get(reason) ?? 0) + 1);
}

/** One device: handshake, CONNECT, SUBSCRIBE; resolves on SUBACK, then answers desired configurations for as long as it lives. */
function session(d: DeviceIdentity): Promise<void> {
  const desired = `devices/${d.id}/twin/desired`;
  const reported = `devices/${d.id}/twin/reported`;
  const inflight = new Map<number, { version: number; at: number }>();
  let nextId = 1;
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, secureContext: createSecureContext({ key: d.key, cert: d.cert, ca: fleet.ca }), rejectUnauthorized: true });
    const packets = parser({ protocolVersion: 4 });
    let [ready, gone] = [false, false];
    const timer = setTimeout(() => fail(new Error('no SUBACK within 60 s')), 60_000);
    const fail = (err: Error) => {
      if (ready) {
        if (!gone) drop(err.message);
        gone = true;
        return;
      }
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('closed')));
    socket.once('secureConnect', () => socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: d.id, keepalive: 3600 })));
    socket.on('data', (b: Buffer) => packets.parse(b));
    packets.on('error', (err: Error) => fail(err));
    packets.on('packet', (p: Packet) => {
      switch (p.cmd) {
        case 'connack':
          if (p.returnCode !== 0) return fail(new Error(`CONNACK ${p.returnCode}`));
          socket.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: desired, qos: 1 }] }));
          return;
        case 'suback':
          if ((p.granted[0] as number) >= 0x80) return fail(new Error(`SUBACK refused (${String(p.granted[0])})`));
          ready = true;
          clearTimeout(timer);
          open += 1;
          sockets.push(socket);
          return resolve();
        case 'publish': {
          const at = Date.now();
          if (p.qos === 1) socket.write(generate({ cmd: 'puback', messageId: p.messageId as number }));
          if (p.topic !== desired) return;
          const msg = JSON.parse(p.payload.toString()) as { version: number; config: Record<string, unknown> };
          const log = logOf(msg.version);
          if (log.arrivals.has(d.id)) log.duplicates += 1;
          else {
            log.received += 1;
            log.arrivals.set(d.id, at);
            log.first = Math.min(log.first, at);
            log.last = Math.max(log.last, at);
          }
          const messageId = nextId;
          nextId = nextId === 65_535 ? 1 : nextId + 1;
          inflight.set(messageId, { version: msg.version, at });
          socket.write(generate({ cmd: 'publish', topic: reported, qos: 1, messageId, dup: false, retain: false, payload: JSON.stringify({ version: msg.version, status: 'applied', config: msg.config, ts: at }) }));
          return;
        }
        case 'puback': {
          const sent = inflight.get(p.messageId as number);
          if (!sent) return;
          inflight.delete(p.messageId as number);
          const log = logOf(sent.version);
          log.acked += 1;
          log.answerMs.push(Date.now() - sent.at);
          return;
        }
        default:
      }
    });
  });
}

async function connectAll(): Promise<void> {
  const t0 = performance.now();
  const ticker = setInterval(() => say({ type: 'progress', open, failed, retries, seconds: (performance.now() - t0) / 1000 }), 1000);
  let next = 0;
  const worker = async () => {
    while (next < fleet.devices.length) {
      const d = fleet.devices[next++] as DeviceIdentity;
      for (let attempt = 1; ; attempt += 1) {
        try {
          await session(d);
          break;
        } catch (err) {
          if (errors.length < 10) errors.push(`${d.id}: ${(err as Error).message}`);
          if (attempt >= ATTEMPTS) {
            failed += 1;
            break;
          }
          retries += 1;
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, fleet.devices.length) }, worker));
  clearInterval(ticker);
  say({ type: 'connected', open, failed, retries, seconds: (performance.now() - t0) / 1000, errors });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : (s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] as number);
};

function stats(wanted: readonly number[], arrivals: boolean) {
  const cpu = process.cpuUsage();
  return {
    type: 'stats',
    open,
    failed,
    dropped,
    dropReasons: Object.fromEntries(dropReasons),
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
    versions: Object.fromEntries(
      wanted.map((v) => {
        const log = logOf(v);
        return [
          v,
          {
            received: log.received,
            duplicates: log.duplicates,
            acked: log.acked,
            first: Number.isFinite(log.first) ? log.first : null,
            last: log.last || null,
            answerP50: pct(log.answerMs, 0.5),
            answerP95: pct(log.answerMs, 0.95),
            answerMax: log.answerMs.length ? Math.max(...log.answerMs) : null,
            ...(arrivals ? { arrivals: Object.fromEntries(log.arrivals) } : {}),
          },
        ];
      }),
    ),
  };
}

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const cmd = JSON.parse(line) as { cmd: string; versions?: number[]; arrivals?: boolean };
  if (cmd.cmd === 'stats') say(stats(cmd.versions ?? [], cmd.arrivals === true));
});
input.on('close', () => {
  closing = true;
  const bye = generate({ cmd: 'disconnect' });
  for (const s of sockets) s.end(bye);
  setTimeout(() => process.exit(0), 2000).unref();
});

await connectAll();
