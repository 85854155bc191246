import type { Clock, Logger } from '@bulwark/core';
import type { SchemaService } from '../schemas/index.js';
import type { TelemetryRepository } from './ingest.js';

const DAY_MS = 86_400_000;

export interface RetentionSettings {
  /** Days raw readings are kept when their schema says nothing (`x-retention-days`). */
  readonly rawRetentionDays: number;
  readonly rollupRetentionDays: number;
  readonly deadLetterRetentionDays: number;
  /** How often the job runs; 0 disables the schedule (the API can still run it). */
  readonly retentionIntervalMs: number;
}

/** What one run deleted: the receipt written to the audit log. */
export interface DeletionReceipt {
  readonly what: string;
  readonly deleted: number;
  /** Everything placed (or received) before this instant is gone. */
  readonly until: number;
  readonly retentionDays: number;
}

/**
 * Deletes telemetry once its schema's retention (`x-retention-days`, else the default) has
 * passed, and dead letters after theirs, writing one receipt per deletion to the audit log.
 */
export class RetentionJob {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<DeletionReceipt[]> | undefined;

  constructor(
    private readonly repo: TelemetryRepository,
    private readonly schemas: SchemaService,
    private readonly settings: RetentionSettings,
    private readonly deps: { clock: Clock; log: Logger; receipt: (r: DeletionReceipt) => Promise<void> },
  ) {}

  start(): void {
    if (this.settings.retentionIntervalMs <= 0) return;
    this.#timer = setInterval(() => void this.run().catch((err: unknown) => this.deps.log.error({ err }, 'the retention job failed')), this.settings.retentionIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Runs once (a run already under way is joined, not doubled). */
  run(): Promise<DeletionReceipt[]> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(): Promise<DeletionReceipt[]> {
    const now = this.deps.clock.now();
    const receipts: DeletionReceipt[] = [];
    for (const schemaId of await this.repo.storedSchemaIds()) {
      const days = await this.#retentionDays(schemaId);
      const until = now - days * DAY_MS;
      const deleted = await this.repo.deleteBefore(schemaId, until);
      if (deleted > 0) receipts.push({ what: `telemetry ${schemaId}`, deleted, until, retentionDays: days });
    }
    const rollupUntil = now - this.settings.rollupRetentionDays * DAY_MS;
    const rollups = await this.repo.deleteRollupsBefore(rollupUntil);
    if (rollups > 0) receipts.push({ what: 'rollups', deleted: rollups, until: rollupUntil, retentionDays: this.settings.rollupRetentionDays });
    const dlUntil = now - this.settings.deadLetterRetentionDays * DAY_MS;
    const dl = await this.repo.deleteDeadLettersBefore(dlUntil);
    if (dl > 0) receipts.push({ what: 'dead letters', deleted: dl, until: dlUntil, retentionDays: this.settings.deadLetterRetentionDays });
    for (const r of receipts) await this.deps.receipt(r);
    return receipts;
  }

  async #retentionDays(schemaId: string): Promise<number> {
    const [name, version] = schemaId.split('@');
    const schema = name && version ? await this.schemas.get(name, Number(version)).catch(() => undefined) : undefined;
    const days = schema?.document['x-retention-days'];
    return typeof days === 'number' ? days : this.settings.rawRetentionDays;
  }
}
