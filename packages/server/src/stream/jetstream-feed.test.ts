import { after, before } from 'node:test';
import pino from 'pino';
import { describeTelemetryFeed } from '../store/contract/telemetry-feed.contract.js';
import { NatsLink } from '../cluster/nats.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { TELEMETRY_STREAM, DEAD_LETTER_STREAM } from './subjects.js';
import { StreamSink, ensureStreams } from './telemetry-stream.js';
import { JetStreamFeed } from './jetstream-feed.js';

/** The feed contract on the telemetry stream of a real nats-server (fresh streams for each test). */
describeWith('JetStreamFeed', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  describeTelemetryFeed(
    async (t) => {
      const log = pino({ level: 'silent' });
      const link = await NatsLink.connect(nats.url, 'feed-test', log);
      t.after(() => link.close());
      const settings = { replicas: 1, maxAgeMs: 3_600_000, maxBytes: 64 * 1024 * 1024, duplicateWindowMs: 60_000 };
      // A purge keeps the duplicate window's ids: each test starts from new streams.
      const old = await ensureStreams(link, settings);
      for (const name of [TELEMETRY_STREAM, DEAD_LETTER_STREAM]) await old.streams.delete(name);
      const jsm = await ensureStreams(link, settings);
      const sink = new StreamSink(link, log);
      return {
        feed: new JetStreamFeed(link, jsm),
        async append(records) {
          for (const r of records) await sink.append(r);
        },
      };
    },
    { prunedByRetention: false },
  );
});
