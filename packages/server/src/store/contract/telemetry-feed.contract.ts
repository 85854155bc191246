import assert from 'node:assert/strict';
import { type TestContext, describe, it } from 'node:test';
import type { TelemetryFeed, TelemetryRecord } from '../../ingest/index.js';

/** A feed over something readings can be appended to (the store, the stream), as one test sees it. */
export interface FeedUnderTest {
  readonly feed: TelemetryFeed;
  /** Stores readings in this order, as the platform's writer would (one batch). */
  append(records: readonly TelemetryRecord[]): Promise<void>;
  /** Deletes readings as retention does (used only when the suite is told the feed is pruned with it). */
  removeBefore?(schemaId: string, cutoffMs: number): Promise<void>;
}

export const reading = (deviceId: string, n: number, schemaId = 'env@1', receivedAt = 1_000 + n): TelemetryRecord => ({
  deviceId,
  msgId: `m${n}`,
  schemaId,
  seq: 1000 + n,
  boot: null,
  deviceTs: null,
  receivedAt,
  ts: receivedAt,
  skewMs: null,
  data: { n },
});

async function readAll(feed: TelemetryFeed, from: string, filter = {}, limit = 3): Promise<{ ids: string[]; next: string; skipped: number }> {
  const ids: string[] = [];
  let next = from;
  let skipped = 0;
  for (let i = 0; i < 100; i += 1) {
    const page = await feed.read(next, filter, limit);
    skipped += page.skipped;
    ids.push(...page.entries.map((e) => `${e.record.deviceId}/${e.record.msgId}`));
    if (page.next === next) break;
    next = page.next;
  }
  return { ids, next, skipped };
}

/** What every TelemetryFeed adapter must do; the store's and the stream's run it. */
/**
 * `prunedByRetention`: the feed loses entries when retention deletes their readings (the
 * store's feed); the stream's keeps them for `stream.maxAgeMs` whatever the store deletes.
 */
export function describeTelemetryFeed(make: (t: TestContext) => Promise<FeedUnderTest>, { prunedByRetention }: { prunedByRetention: boolean }): void {
  describe('TelemetryFeed contract', () => {
    it('an empty feed has no entries, and its head is where a new reader starts', async (t) => {
      const { feed, append } = await make(t);
      const head = await feed.head();
      assert.deepEqual((await feed.read(head, {}, 10)).entries, []);
      await append([reading('a', 1)]);
      const page = await feed.read(head, {}, 10);
      assert.deepEqual(
        page.entries.map((e) => e.record.msgId),
        ['m1'],
      );
      assert.equal(await feed.head(), page.entries[0]?.position);
    });

    it('reads in the order stored, page by page, with stable positions', async (t) => {
      const { feed, append } = await make(t);
      const start = await feed.head();
      await append([reading('a', 1), reading('b', 2), reading('a', 3)]);
      await append([reading('b', 4), reading('a', 5)]);
      const all = await readAll(feed, start);
      assert.deepEqual(all.ids, ['a/m1', 'b/m2', 'a/m3', 'b/m4', 'a/m5']);
      const first = await feed.read(start, {}, 2);
      const again = await feed.read(start, {}, 2);
      assert.deepEqual(
        again.entries.map((e) => e.position),
        first.entries.map((e) => e.position),
        'a redelivery reads the same positions',
      );
      assert.equal(first.next, first.entries[1]?.position, 'a full page ends at its last entry');
      assert.deepEqual(first.entries[1]?.record, reading('b', 2));
      const rest = await feed.read(first.next, {}, 10);
      assert.deepEqual(
        rest.entries.map((e) => e.record.msgId),
        ['m3', 'm4', 'm5'],
      );
      assert.equal((await feed.read(rest.next, {}, 10)).entries.length, 0);
    });

    it('filters by schema and device, and moves past what it skipped', async (t) => {
      const { feed, append } = await make(t);
      const start = await feed.head();
      await append([reading('a', 1, 'env@1'), reading('b', 2, 'env@2'), reading('a', 3, 'env@2'), reading('c', 4, 'env@1')]);
      assert.deepEqual((await readAll(feed, start, { schemaIds: ['env@2'] })).ids, ['b/m2', 'a/m3']);
      assert.deepEqual((await readAll(feed, start, { deviceIds: ['a', 'c'] })).ids, ['a/m1', 'a/m3', 'c/m4']);
      assert.deepEqual((await readAll(feed, start, { schemaIds: ['env@1'], deviceIds: ['a'] })).ids, ['a/m1']);
      const none = await feed.read(start, { deviceIds: ['z'] }, 10);
      assert.equal(none.entries.length, 0);
      assert.equal(none.next, await feed.head(), 'a filter that matched nothing still moves the reader on');
    });

    it('positionAt finds the first entry received at or after a time', async (t) => {
      const { feed, append } = await make(t);
      await append([reading('a', 1, 'env@1', 5_000), reading('a', 2, 'env@1', 6_000), reading('a', 3, 'env@1', 7_000)]);
      const page = await feed.read(await feed.positionAt(6_000), {}, 10);
      assert.deepEqual(
        page.entries.map((e) => e.record.msgId),
        ['m2', 'm3'],
      );
      assert.equal((await feed.read(await feed.positionAt(99_000), {}, 10)).entries.length, 0);
    });

    if (prunedByRetention)
      it('a reader behind deleted readings passes them and counts them as skipped', async (t) => {
        const { feed, append, removeBefore } = await make(t);
        assert.ok(removeBefore, 'a feed pruned by retention gives the suite removeBefore');
        const start = await feed.head();
        await append([reading('a', 1, 'old@1', 100), reading('a', 2, 'env@1', 200), reading('a', 3, 'old@1', 300), reading('a', 4, 'env@1', 400)]);
        await removeBefore('old@1', 1_000);
        const all = await readAll(feed, start);
        assert.deepEqual(all.ids, ['a/m2', 'a/m4']);
        assert.equal(all.skipped, 2);
      });
  });
}
