import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import type { FeedFilter, TelemetryFeed, TelemetryRecord } from '../ingest/index.js';
import type { BatchStore } from './store-writer.js';

export interface ReplayRequest {
  readonly sinceMs: number;
  readonly untilMs: number;
  readonly deviceId?: string;
  readonly schemaId?: string;
}

export interface ReplayJob extends ReplayRequest {
  readonly id: string;
  state: 'running' | 'done' | 'failed';
  /** Readings of the range read from the stream so far. */
  read: number;
  /** Of those, readings the store did not have (written now), and readings it had. */
  inserted: number;
  repeats: number;
  readonly startedAt: number;
  finishedAt: number | null;
  error: string | null;
}

/** Readings received this long after `until` are still read: nodes' clocks differ, and the stream is in arrival order. */
const CLOCK_SLACK_MS = 60_000;
const PAGE = 2_000;
/** Finished jobs kept for `GET` (newest first). */
const KEPT = 50;

/**
 * Rebuilds or backfills the store from the telemetry stream over a time range of receive
 * times (after a restore from an older backup, say): every reading of the range the stream
 * still holds (`stream.maxAgeMs`) is written as the store writers write, skipping those the
 * store has, and folding only the ones it writes into the rollups. Jobs run on the node that
 * was asked and are listed there.
 */
export class StreamReplays {
  readonly #jobs = new Map<string, ReplayJob>();

  constructor(
    private readonly feed: TelemetryFeed,
    private readonly store: BatchStore,
    private readonly deps: { clock: Clock; ids: IdGen; log: Logger },
  ) {}

  start(request: ReplayRequest): ReplayJob {
    if (!(request.untilMs > request.sinceMs)) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'until must be later than since');
    // One at a time per node: a replay shares the store writers' connections.
    if ([...this.#jobs.values()].some((j) => j.state === 'running')) throw new PlatformError('BULWARK_ERR_CONFLICT', 'a replay is already running on this node: wait for it (GET /api/v1/telemetry/replay)');
    const job: ReplayJob = { ...request, id: this.deps.ids.next('rpl'), state: 'running', read: 0, inserted: 0, repeats: 0, startedAt: this.deps.clock.now(), finishedAt: null, error: null };
    this.#jobs.set(job.id, job);
    for (const old of [...this.#jobs.values()].filter((j) => j.state !== 'running').slice(0, Math.max(0, this.#jobs.size - KEPT))) this.#jobs.delete(old.id);
    void this.#run(job)
      .then(
        () => {
          job.state = 'done';
        },
        (err: unknown) => {
          job.state = 'failed';
          job.error = (err as Error).message;
          this.deps.log.warn({ replay: job.id, err: job.error }, 'a replay of the telemetry stream failed');
        },
      )
      .finally(() => {
        job.finishedAt = this.deps.clock.now();
      });
    return job;
  }

  get(id: string): ReplayJob {
    const job = this.#jobs.get(id);
    if (!job) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no replay ${id} on this node (jobs are listed by the node that runs them)`);
    return job;
  }

  list(): ReplayJob[] {
    return [...this.#jobs.values()].sort((a, b) => b.startedAt - a.startedAt);
  }

  async #run(job: ReplayJob): Promise<void> {
    const filter: FeedFilter = { ...(job.deviceId ? { deviceIds: [job.deviceId] } : {}), ...(job.schemaId ? { schemaIds: [job.schemaId] } : {}) };
    const end = await this.feed.head();
    let position = await this.feed.positionAt(job.sinceMs);
    for (;;) {
      const page = await this.feed.read(position, filter, PAGE);
      const batch: TelemetryRecord[] = [];
      let past = false;
      for (const { record } of page.entries) {
        if (record.receivedAt >= job.untilMs + CLOCK_SLACK_MS) past = true;
        if (record.receivedAt >= job.sinceMs && record.receivedAt < job.untilMs) batch.push(record);
      }
      if (batch.length > 0) {
        const inserted = await this.store.write(batch);
        job.read += batch.length;
        job.inserted += inserted;
        job.repeats += batch.length - inserted;
      }
      if (past || page.next === position || Number(page.next) >= Number(end)) return;
      position = page.next;
    }
  }
}
