import { SubscriptionWorker, type WorkerDeps } from './worker.js';

interface Running {
  readonly worker: SubscriptionWorker;
  readonly stop: AbortController;
  readonly done: Promise<void>;
  /** The subscription's updatedAt when the loop started: a change (URL, filter, resume) restarts it. */
  readonly version: number;
}

/**
 * Runs one delivery loop per active subscription. It runs as a singleton (one node of a
 * cluster delivers; in embedded mode the process): `start` looks at the subscriptions now and
 * every poll interval, starts loops for active ones and stops loops of paused, changed or
 * deleted ones. Engine-agnostic: it reads whatever TelemetryFeed it is given.
 */
export class WebhookDispatcher {
  readonly #running = new Map<string, Running>();
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #started = false;

  constructor(private readonly deps: WorkerDeps) {}

  async start(): Promise<void> {
    this.#started = true;
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.deps.settings.pollIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#started = false;
    clearInterval(this.#timer);
    await this.#refreshing;
    const all = [...this.#running.values()];
    for (const r of all) r.stop.abort();
    await Promise.all(all.map((r) => r.done));
  }

  /** New readings were stored: idle loops read the feed now instead of at their next poll. */
  notify(): void {
    for (const r of this.#running.values()) r.worker.wake();
  }

  /** Looks at the subscriptions again (also called by the service after a change on this node). */
  refresh(): Promise<void> {
    if (!this.#started) return Promise.resolve();
    this.#refreshing ??= this.#refresh()
      .catch((err: unknown) => this.deps.log.error({ err }, 'could not read the webhook subscriptions'))
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    const subscriptions = await this.deps.repo.list();
    const active = new Map(subscriptions.filter((w) => w.state === 'active').map((w) => [w.id, w.updatedAt]));
    this.deps.metrics.paused.set(subscriptions.length - active.size);
    const stopping = new Map<string, Promise<void>>();
    for (const [id, r] of this.#running) {
      if (active.get(id) !== r.version) {
        r.stop.abort();
        stopping.set(id, r.done);
        this.#running.delete(id);
        if (!subscriptions.some((w) => w.id === id)) this.deps.metrics.lag.remove({ webhook: id });
      }
    }
    for (const [id, version] of active) {
      if (this.#running.has(id) || !this.#started) continue;
      const worker = new SubscriptionWorker(id, this.deps);
      const stop = new AbortController();
      const running: Running = {
        worker,
        stop,
        version,
        // A loop restarted after a change begins once the old one has finished its attempt.
        done: (stopping.get(id) ?? Promise.resolve())
          .then(() => worker.run(stop.signal))
          .finally(() => {
            if (this.#running.get(id) === running) this.#running.delete(id);
          }),
      };
      this.#running.set(id, running);
    }
  }

  /** Ids of the subscriptions with a loop running now (for tests and the node listing). */
  get running(): string[] {
    return [...this.#running.keys()];
  }
}
