import { readFileSync } from 'node:fs';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, credsAuthenticator } from '@nats-io/transport-node';

/**
 * An application reading readings of its schemas from Bulwark's telemetry stream.
 *   node --import tsx examples/stream-consumer/consumer.ts credentials.json
 * `credentials.json` is what `POST /api/v1/applications/{id}/nats-credentials` answered, with
 * the servers added: { "servers": "nats://nats1:4222", "creds": "...", "inboxPrefix": "...",
 * "consumers": [{ "name": "...", "filter": "..." }] } (or see README.md for the CLI's files).
 */
interface Credentials {
  readonly servers: string;
  readonly creds: string;
  readonly inboxPrefix: string;
  readonly stream: string;
  readonly consumers: readonly { readonly name: string; readonly filter: string }[];
}

/** A reading as the stream carries it (docs/reference/stream.md). */
interface Reading {
  readonly deviceId: string;
  readonly msgId: string;
  readonly schemaId: string;
  readonly ts: number;
  readonly data: Record<string, unknown>;
}

const file = process.argv[2] ?? 'credentials.json';
const c = JSON.parse(readFileSync(file, 'utf8')) as Credentials;
const nc = await connect({
  servers: c.servers.split(','),
  authenticator: credsAuthenticator(new TextEncoder().encode(c.creds)),
  // The credential may subscribe only under its own inbox prefix.
  inboxPrefix: c.inboxPrefix,
  name: 'stream-consumer example',
});
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);

/**
 * The stream delivers at least once: after a reconnect or a lost acknowledgement a reading
 * comes again. (deviceId, msgId) names a reading for good; remember the ones handled (here
 * in memory and bounded; a real application keeps them where it writes its results, in the
 * same transaction).
 */
const seen = new Map<string, number>();
const SEEN_MAX = 100_000;
const firstTime = (r: Reading): boolean => {
  const key = `${r.deviceId}/${r.msgId}`;
  if (seen.has(key)) return false;
  seen.set(key, Date.now());
  if (seen.size > SEEN_MAX) seen.delete(seen.keys().next().value as string);
  return true;
};

async function follow(consumer: { readonly name: string; readonly filter: string }): Promise<void> {
  // A durable pull consumer under the name the credential allows: it keeps its place across
  // restarts of this program, and goes away after a week without use.
  await jsm.consumers.add(c.stream, {
    name: consumer.name,
    durable_name: consumer.name,
    filter_subject: consumer.filter,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
    inactive_threshold: 7 * 24 * 3_600 * 1e9,
  });
  const messages = await (await js.consumers.get(c.stream, consumer.name)).consume({ max_messages: 256 });
  for await (const m of messages) {
    const reading = m.json<Reading>();
    if (firstTime(reading)) console.log(`${new Date(reading.ts).toISOString()} ${reading.deviceId} ${reading.schemaId} ${JSON.stringify(reading.data)}`);
    m.ack();
  }
}

process.on('SIGINT', () => void nc.drain());
await Promise.all(c.consumers.map(follow));
