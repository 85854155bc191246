import { type NatsConnection, connect } from '@nats-io/transport-node';
import { type JetStreamClient, type JetStreamManager, jetstream } from '@nats-io/jetstream';
import type { TelemetryRecord } from '../packages/server/src/ingest/index.js';
import type { NatsLink } from '../packages/server/src/cluster/nats.js';
import { ensureStreams } from '../packages/server/src/stream/telemetry-stream.js';
import { STREAM_PARTITIONS, TELEMETRY_STREAM, telemetrySubject, streamMsgId } from '../packages/server/src/stream/subjects.js';
import { writerName } from '../packages/server/src/stream/store-writer.js';
import { PostgresTelemetryCopy } from '../packages/server/src/store/postgres/telemetry-copy.js';
import { bulwarkDefault } from './bulwark.js';
import { progress } from './children.js';
import { delay, round } from './proc.js';

/**
 * The telemetry stream's store writers, measured from outside: a backlog of readings put
 * straight into the stream (the subjects, message ids and JSON StreamSink writes) while no
 * node runs, then the time the nodes' writers take to store it; the writers' lag (NATS's own
 * consumer info, the figure `bulwark_stream_writer_lag_messages` reports) during the paced
 * load; and raw COPY on the same database with the same rows, for scale.
 */

export interface WriterDrain {
  /** Readings put into the stream before the nodes started. */
  readonly backlog: number;
  /** Rows inserted per second by every writer together, while every partition still had a backlog. */
  readonly rowsPerSec: number;
  readonly seconds: number;
  readonly inserted: number;
  readonly repeats: number;
  /** From the nodes' histograms: readings per batch and seconds per batch (COPY + move + rollups + commit), means. */
  readonly meanBatch: number;
  readonly meanBatchMs: number;
  /** How fast the bench itself put the backlog into the stream (msg/s, JetStream publish acknowledged). */
  readonly publishPerSec: number;
  readonly complete: boolean;
}

export interface LagTrace {
  readonly max: number;
  /** Lag when the paced load stopped, and seconds from then until it was 0 (null: not within the wait). */
  readonly atEnd: number;
  readonly backToZeroS: number | null;
}

/** The bench's own NATS connection: backlogs and lag, never counted as a node's work. */
export class StreamProbe {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  static async open(servers: string): Promise<StreamProbe> {
    const nc = await connect({ servers: servers.split(',') });
    // The streams as a node makes them (default settings), so that a backlog can go in before any node ran.
    const jsm = await ensureStreams({ nc } as unknown as NatsLink, {
      replicas: 1,
      maxAgeMs: bulwarkDefault('stream.maxAgeMs'),
      maxBytes: bulwarkDefault('stream.maxBytes'),
      duplicateWindowMs: bulwarkDefault('stream.duplicateWindowMs'),
    });
    return new StreamProbe(nc, jetstream(nc), jsm);
  }

  /** Readings not stored yet over every partition (pending + delivered unacknowledged); a partition with no writer consumer yet counts its stream messages. */
  async lag(): Promise<number> {
    let total = 0;
    for (let p = 0; p < STREAM_PARTITIONS; p += 1) {
      try {
        const info = await this.jsm.consumers.info(TELEMETRY_STREAM, writerName(p));
        total += info.num_pending + info.num_ack_pending;
      } catch {
        // No writer consumer yet (no node has run): not counted; the paced load always runs after the writers started.
      }
    }
    return total;
  }

  /** Puts `records` into the telemetry stream as StreamSink does, `window` publishes in flight. */
  async publish(records: readonly TelemetryRecord[], what: string, window = 2000): Promise<number> {
    const t0 = performance.now();
    let next = 0;
    let lastNote = t0;
    const worker = async () => {
      for (let i = next++; i < records.length; i = next++) {
        const r = records[i] as TelemetryRecord;
        await this.js.publish(telemetrySubject(r.schemaId, r.deviceId), JSON.stringify(r), { msgID: streamMsgId(r.deviceId, r.msgId), timeout: 30_000 });
        if (performance.now() - lastNote > 5_000) {
          lastNote = performance.now();
          progress(`${what}: ${next} of ${records.length} in the stream`);
        }
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    return records.length / ((performance.now() - t0) / 1000);
  }

  /** Polls the lag every `everyMs` until stopped; then waits (up to `maxWaitMs`) for it to reach 0. */
  watch(everyMs = 1000): { stop(maxWaitMs: number): Promise<LagTrace> } {
    let max = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        max = Math.max(max, await this.lag().catch(() => 0));
        await delay(everyMs);
      }
    })();
    return {
      stop: async (maxWaitMs) => {
        running = false;
        await loop;
        const atEnd = await this.lag();
        max = Math.max(max, atEnd);
        const t0 = performance.now();
        let backToZeroS: number | null = atEnd === 0 ? 0 : null;
        while (backToZeroS === null && performance.now() - t0 < maxWaitMs) {
          await delay(250);
          if ((await this.lag()) === 0) backToZeroS = round((performance.now() - t0) / 1000, 1);
        }
        return { max, atEnd, backToZeroS };
      },
    };
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}

/** `n` readings of the bench schema, as the pipeline stores them, spread round-robin over `deviceIds`. */
export function backlogRecords(deviceIds: readonly string[], n: number, tag: string): TelemetryRecord[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i): TelemetryRecord => {
    const deviceId = deviceIds[i % deviceIds.length] as string;
    const ts = now - n + i;
    return { deviceId, msgId: `${tag}-${i}`, schemaId: 'bench@1', seq: i, boot: null, deviceTs: ts, receivedAt: ts, ts, skewMs: 0, data: { v: i % 1000 } };
  });
}

/** The writer metrics of one node's /metrics. */
export async function writerCounts(url: string): Promise<{ inserted: number; repeats: number; batchSum: number; batchCount: number; sizeSum: number }> {
  const text = await fetch(`${url}/metrics`).then((r) => r.text());
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    inserted: num(/^bulwark_stream_writer_rows_total\{result="inserted"\} (\S+)/m),
    repeats: num(/^bulwark_stream_writer_rows_total\{result="repeat"\} (\S+)/m),
    batchSum: num(/^bulwark_stream_writer_batch_seconds_sum (\S+)/m),
    batchCount: num(/^bulwark_stream_writer_batch_seconds_count (\S+)/m),
    sizeSum: num(/^bulwark_stream_writer_batch_size_sum (\S+)/m),
  };
}

const NONE = { inserted: 0, repeats: 0, batchSum: 0, batchCount: 0, sizeSum: 0 };
const sumCounts = async (urls: readonly string[]) => {
  const all = await Promise.all(urls.map((u) => writerCounts(u).catch(() => NONE)));
  return all.reduce((a, c) => ({ inserted: a.inserted + c.inserted, repeats: a.repeats + c.repeats, batchSum: a.batchSum + c.batchSum, batchCount: a.batchCount + c.batchCount, sizeSum: a.sizeSum + c.sizeSum }), NONE);
};

/**
 * Times the nodes' writers storing a backlog of `backlog` readings (the nodes started on it;
 * their counters start at 0). The rate is taken between the first poll that saw rows inserted
 * and the one that saw the last: every partition had readings waiting throughout, and the
 * nodes' start-up is left out.
 */
export async function measureDrain(urls: () => readonly string[], backlog: number, publishPerSec: number, what: string, maxMs = 300_000): Promise<WriterDrain> {
  const t0 = performance.now();
  let first: { t: number; inserted: number } | undefined;
  let last = { t: t0, inserted: 0 };
  let lastNote = t0;
  let c = NONE;
  while (performance.now() - t0 < maxMs) {
    c = await sumCounts(urls());
    const t = performance.now();
    if (c.inserted > 0 && !first) first = { t, inserted: c.inserted };
    last = { t, inserted: c.inserted };
    if (c.inserted + c.repeats >= backlog) break;
    if (t - lastNote > 5_000) {
      lastNote = t;
      progress(`${what}: writers stored ${c.inserted} of ${backlog}`);
    }
    await delay(100);
  }
  const seconds = first ? (last.t - first.t) / 1000 : 0;
  return {
    backlog,
    rowsPerSec: first && seconds > 0 ? round((last.inserted - first.inserted) / seconds, 0) : 0,
    seconds: round(seconds, 2),
    inserted: c.inserted,
    repeats: c.repeats,
    meanBatch: round(c.sizeSum / Math.max(1, c.batchCount), 0),
    meanBatchMs: round((c.batchSum * 1000) / Math.max(1, c.batchCount), 1),
    publishPerSec: round(publishPerSec, 0),
    complete: c.inserted + c.repeats >= backlog,
  };
}

/** PostgresTelemetryCopy.rawCopyRate on the bench database: COPY alone, the same rows, rolled back. */
export async function rawCopyRowsPerSec(storeUrl: string, records: readonly TelemetryRecord[]): Promise<number> {
  const copy = new PostgresTelemetryCopy({ url: storeUrl, maxConnections: 1 });
  try {
    return round(await copy.rawCopyRate(records), 0);
  } finally {
    await copy.close();
  }
}
