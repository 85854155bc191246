import type { Logger } from '@bulwark/core';
import { AckPolicy, type ConsumerMessages, type JetStreamManager, jetstream } from '@nats-io/jetstream';
import type { DeadLetter } from '../ingest/index.js';
import type { SingletonJob, NatsLink } from '../cluster/index.js';
import { DEAD_LETTER_STREAM, PULL_EXPIRES_MS } from './subjects.js';

const CONSUMER = 'store-writer';

/**
 * Stores the dead-letter stream's letters in the store (one node at a time, under a lease):
 * each acknowledged after it is stored; one already there (a redelivery) counts as stored.
 * Letters are few next to readings: one at a time, explicit acknowledgements.
 */
export class DeadLetterWriter implements SingletonJob {
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  #running = false;

  constructor(
    private readonly link: NatsLink,
    private readonly jsm: JetStreamManager,
    private readonly insert: (letter: DeadLetter) => Promise<void>,
    private readonly deps: { log: Logger; malformed: () => void },
  ) {}

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#messages?.stop();
    await this.#loop;
  }

  async #run(): Promise<void> {
    for (let pause = 200; this.#running; pause = Math.min(pause * 2, 5_000)) {
      try {
        await this.jsm.consumers.add(DEAD_LETTER_STREAM, { durable_name: CONSUMER, ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000, max_deliver: -1, max_ack_pending: 1_000 });
        const consumer = await jetstream(this.link.nc).consumers.get(DEAD_LETTER_STREAM, CONSUMER);
        const messages = (this.#messages = await consumer.consume({ max_messages: 100, expires: PULL_EXPIRES_MS }));
        if (!this.#running) messages.stop();
        for await (const m of messages) {
          let letter: DeadLetter;
          try {
            letter = m.json<DeadLetter>();
            if (typeof letter?.id !== 'string' || typeof letter.deviceId !== 'string') throw new Error('not a dead letter');
          } catch {
            this.deps.malformed();
            m.term();
            continue;
          }
          await this.#store(letter);
          m.ack();
        }
      } catch (err) {
        if (!this.#running) break;
        this.deps.log.warn({ err: (err as Error).message }, 'dead-letter writer: retrying');
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  /** Stores a letter, retrying while the store is away; a letter stored before is done. */
  async #store(letter: DeadLetter): Promise<void> {
    for (let pause = 100; ; pause = Math.min(pause * 2, 2_000)) {
      try {
        await this.insert(letter);
        return;
      } catch (err) {
        if ((err as { code?: string }).code === 'BULWARK_ERR_CONFLICT') return;
        if (!this.#running) throw err;
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }
}
