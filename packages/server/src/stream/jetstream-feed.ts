import { DeliverPolicy, type JetStreamManager, jetstream } from '@nats-io/jetstream';
import type { FeedEntry, FeedFilter, FeedPage, TelemetryFeed } from '../ingest/index.js';
import type { NatsLink } from '../cluster/index.js';
import { parseRecord } from './records.js';
import { TELEMETRY_PREFIX, TELEMETRY_STREAM, deviceSubjects, schemaSubjects } from './subjects.js';

/**
 * The stored readings as cluster mode's feed: the telemetry stream, positions are its
 * sequence numbers. Each read is an ordered consumer from the position after `after`,
 * filtered by subject where one schema or one device is asked for (2.9 takes one filter per
 * consumer), and by the reader's filter otherwise.
 */
export class JetStreamFeed implements TelemetryFeed {
  constructor(
    private readonly link: NatsLink,
    private readonly jsm: JetStreamManager,
  ) {}

  async read(after: string, filter: FeedFilter, limit: number): Promise<FeedPage> {
    const from = Number(after);
    const state = (await this.jsm.streams.info(TELEMETRY_STREAM)).state;
    const skipped = state.first_seq > from + 1 && state.messages > 0 ? state.first_seq - from - 1 : 0;
    if (state.last_seq <= from) return { entries: [], next: String(from), skipped: 0 };
    const consumer = await jetstream(this.link.nc).consumers.get(TELEMETRY_STREAM, {
      filter_subjects: subjectFor(filter),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from + 1,
    });
    try {
      const pending = (await consumer.info()).num_pending;
      if (pending === 0) return { entries: [], next: String(state.last_seq), skipped };
      const entries: FeedEntry[] = [];
      let next = from;
      const messages = await consumer.fetch({ max_messages: Math.min(limit, pending), expires: 5_000 });
      for await (const m of messages) {
        next = m.seq;
        const record = parseRecord(m.data);
        if (record && matches(filter, record.schemaId, record.deviceId)) entries.push({ position: String(m.seq), record });
      }
      return { entries, next: String(next), skipped };
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  async head(): Promise<string> {
    return String((await this.jsm.streams.info(TELEMETRY_STREAM)).state.last_seq);
  }

  /**
   * By the readings' own receive times, not the stream's: a coarse start from the stream's
   * clock (a minute early, for nodes whose clocks differ), then forward to the first reading
   * received at or after `sinceMs`.
   */
  async positionAt(sinceMs: number): Promise<string> {
    const consumer = await jetstream(this.link.nc).consumers.get(TELEMETRY_STREAM, {
      filter_subjects: `${TELEMETRY_PREFIX}.>`,
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(Math.max(0, sinceMs - 60_000)).toISOString(),
    });
    try {
      let pending = (await consumer.info()).num_pending;
      while (pending > 0) {
        const messages = await consumer.fetch({ max_messages: Math.min(pending, 1_000), expires: 5_000 });
        let got = 0;
        for await (const m of messages) {
          got += 1;
          pending = m.info.pending;
          const record = parseRecord(m.data);
          if (record && record.receivedAt >= sinceMs) return String(m.seq - 1);
        }
        if (got === 0) break;
      }
      return await this.head();
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }
}

function subjectFor(filter: FeedFilter): string {
  const schemas = filter.schemaIds ?? [];
  const devices = filter.deviceIds ?? [];
  if (devices.length === 1) return deviceSubjects(devices[0] as string);
  if (schemas.length === 1 && devices.length === 0) {
    const id = schemas[0] as string;
    const at = id.lastIndexOf('@');
    return schemaSubjects(id.slice(0, at), Number(id.slice(at + 1)));
  }
  return `${TELEMETRY_PREFIX}.>`;
}

function matches(filter: FeedFilter, schemaId: string, deviceId: string): boolean {
  return (!filter.schemaIds?.length || filter.schemaIds.includes(schemaId)) && (!filter.deviceIds?.length || filter.deviceIds.includes(deviceId));
}
