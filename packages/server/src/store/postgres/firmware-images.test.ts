import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { it } from 'node:test';
import { ManualClock, isPlatformError, silentLogger } from '@bulwark/core';
import { tempDir } from '../../testing/harness.js';
import { describePg, freshPgSchema, withPgConnection } from '../../testing/pg.js';
import { IMAGE_CHUNK_BYTES, type ImageFetchResult, SharedArtifactStore } from '../../ota/index.js';
import type { FirmwareArtifact, FirmwareImageRepository } from '../../ota/ota.js';
import { type Store, openStore } from '../store.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function artifact(id: string, image: Buffer, state: FirmwareArtifact['state'] = 'awaiting_image'): FirmwareArtifact {
  return {
    id,
    name: `fw-${id}`,
    version: '1.0.0',
    securityVersion: 1,
    model: 'gw-1',
    hardwareRevisions: ['C'],
    size: image.length,
    sha256: sha256(image),
    expiresAt: Date.now() + 86_400_000,
    state,
    manifest: {} as FirmwareArtifact['manifest'],
    uploadedBy: 'test',
    createdAt: Date.now(),
    publishedAt: null,
  };
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

async function* from(...parts: Buffer[]): AsyncIterable<Buffer> {
  yield* parts;
}

describePg('PostgreSQL: firmware images in chunks, served by every node from a verified local copy (real server, one schema per test)', (url) => {
  async function setup(t: TestContext) {
    const schema = await freshPgSchema(t, url);
    const store: Store = await openStore({ engine: 'postgres', location: url, schema }, new ManualClock());
    t.after(() => store.close());
    const images = store.firmwareImages as FirmwareImageRepository;
    assert.ok(images, 'a PostgreSQL store holds firmware images');
    const sql = (text: string, values: unknown[] = []) =>
      withPgConnection(url, async (c) => {
        await c.query(`SET search_path = ${schema}`);
        return (await c.query(text, values)).rows;
      });
    /** One node: its own data directory over the shared schema, with the fetches it made. */
    const node = () => {
      const fetches: ImageFetchResult[] = [];
      const dataDir = tempDir(t);
      const shared = new SharedArtifactStore(images, store.firmware, dataDir, { log: silentLogger, onFetch: (r) => fetches.push(r) });
      return { shared, fetches, dataDir };
    };
    /** Uploads an image through a node as FirmwareService does: receive, check, commit, publish. */
    const publish = async (via: SharedArtifactStore, a: FirmwareArtifact, image: Buffer) => {
      assert.equal(await store.firmware.insert(a), true);
      const pending = await via.receive(a.id, Readable.from([image.subarray(0, 1000), image.subarray(1000)]), a.size);
      assert.deepEqual([pending.size, pending.sha256, pending.tooLong], [image.length, sha256(image), false]);
      await pending.commit();
      assert.equal(await store.firmware.markPublished(a.id, Date.now()), true);
      return { ...a, state: 'published' as const };
    };
    return { store, images, sql, node, publish };
  }

  it('stores an image in fixed-size chunks all or nothing, replaces it whole, and removes the chunks with their artifact', async (t) => {
    const { store, images, sql } = await setup(t);
    const image = randomBytes(IMAGE_CHUNK_BYTES * 2 + 10);
    await store.firmware.insert(artifact('fw_a', image));
    const parts = [image.subarray(0, IMAGE_CHUNK_BYTES), image.subarray(IMAGE_CHUNK_BYTES, 2 * IMAGE_CHUNK_BYTES), image.subarray(2 * IMAGE_CHUNK_BYTES)];
    assert.equal(await images.put('fw_a', from(...parts)), 3);
    assert.deepEqual(Buffer.concat(await collect(images.chunks('fw_a'))), image);
    assert.deepEqual(await images.put('fw_a', from(Buffer.from('short'))), 1, 'a second put replaces the image');
    assert.deepEqual(await collect(images.chunks('fw_a')), [Buffer.from('short')]);

    // A failing source mid-image leaves the previous image untouched.
    async function* broken(): AsyncIterable<Buffer> {
      yield Buffer.from('half');
      throw new Error('the upload went away');
    }
    await assert.rejects(images.put('fw_a', broken()), /went away/);
    assert.deepEqual(await collect(images.chunks('fw_a')), [Buffer.from('short')], 'all or nothing');

    await assert.rejects(images.put('fw_unknown', from(Buffer.from('x'))), (err) => isPlatformError(err) && err.code === 'BULWARK_ERR_CONFLICT', 'no image without its artifact');
    assert.deepEqual(await images.stored(['fw_a', 'fw_unknown']), new Set(['fw_a']));
    await store.firmware.delete('fw_a');
    assert.deepEqual(await sql('SELECT count(*)::int AS n FROM firmware_image_chunks'), [{ n: 0 }], 'the chunks went with their artifact');
  });

  it('lets a node that lacks an image fetch it once for concurrent requests, and refuses (and counts) a corrupt, short or missing image', async (t) => {
    const { store, sql, node, publish } = await setup(t);
    const a = node();
    const image = randomBytes(IMAGE_CHUNK_BYTES * 3 + 777);
    const fw = await publish(a.shared, artifact('fw_b', image), image);
    assert.deepEqual(
      await sql('SELECT idx::int AS idx, length(data) AS n FROM firmware_image_chunks ORDER BY idx'),
      [0, 1, 2, 3].map((idx) => ({ idx, n: idx < 3 ? IMAGE_CHUNK_BYTES : 777 })),
    );
    assert.deepEqual(readFileSync(await a.shared.localFile(fw)), image, 'the uploading node serves its own copy');
    assert.deepEqual(a.fetches, [], 'without fetching it');

    const b = node();
    const paths = await Promise.all(Array.from({ length: 5 }, () => b.shared.localFile(fw)));
    assert.equal(new Set(paths).size, 1);
    assert.deepEqual(readFileSync(paths[0]!), image);
    assert.deepEqual(b.fetches, ['fetched'], 'five concurrent requests, one fetch');
    await b.shared.localFile(fw);
    assert.deepEqual(b.fetches, ['fetched'], 'a later request uses the copy');

    // One flipped byte in one chunk: refused, counted, nothing left in the cache.
    const [original] = (await sql('SELECT data FROM firmware_image_chunks WHERE artifact_id = $1 AND idx = 2', ['fw_b'])) as { data: Buffer }[];
    const flipped = Buffer.from(original!.data);
    flipped[100] = flipped[100]! ^ 1;
    await sql('UPDATE firmware_image_chunks SET data = $1 WHERE artifact_id = $2 AND idx = 2', [flipped, 'fw_b']);
    const c = node();
    const unavailable = (err: unknown) => isPlatformError(err) && err.code === 'BULWARK_ERR_FIRMWARE_UNAVAILABLE';
    await assert.rejects(c.shared.localFile(fw), unavailable);
    await assert.rejects(c.shared.localFile(fw), unavailable, 'a refused image is fetched again on the next request, and refused again');
    assert.deepEqual(c.fetches, ['corrupt', 'corrupt']);
    assert.deepEqual(readdirSync(join(c.dataDir, 'firmware')), [], 'nothing of it is kept');

    await sql('UPDATE firmware_image_chunks SET data = $1 WHERE artifact_id = $2 AND idx = 2', [original!.data, 'fw_b']);
    await sql('DELETE FROM firmware_image_chunks WHERE artifact_id = $1 AND idx = 3', ['fw_b']);
    await assert.rejects(c.shared.localFile(fw), unavailable, 'a short image is refused');
    await sql('DELETE FROM firmware_image_chunks WHERE artifact_id = $1', ['fw_b']);
    await assert.rejects(c.shared.localFile(fw), unavailable, 'so is a missing one');
    assert.deepEqual(c.fetches, ['corrupt', 'corrupt', 'corrupt', 'missing']);

    // B's verified copy stays servable; a copy tampered on disk is checked on the next start (a new process) and replaced.
    assert.deepEqual(readFileSync(await b.shared.localFile(fw)), image);
    await store.firmwareImages!.put('fw_b', from(image));
    writeFileSync(paths[0]!, randomBytes(image.length));
    const bAgain = new SharedArtifactStore(store.firmwareImages!, store.firmware, b.dataDir, { log: silentLogger, onFetch: (r) => b.fetches.push(r) });
    assert.deepEqual(readFileSync(await bAgain.localFile(fw)), image);
    assert.deepEqual(b.fetches, ['fetched', 'fetched']);
  });

  it("sweeps a node's cache at start: leftovers and copies of removed images go, images kept before the cluster are stored", async (t) => {
    const { store, images, node } = await setup(t);
    const n = node();
    const dir = join(n.dataDir, 'firmware');
    const legacy = randomBytes(5000);
    await store.firmware.insert(artifact('fw_legacy', legacy));
    await store.firmware.markPublished('fw_legacy', Date.now());
    writeFileSync(join(dir, 'fw_legacy.bin'), legacy);
    writeFileSync(join(dir, 'fw_gone.bin'), randomBytes(10));
    writeFileSync(join(dir, 'fw_x.bin.part'), randomBytes(10));
    writeFileSync(join(dir, 'fw_y.bin.fetch'), randomBytes(10));
    assert.deepEqual(await n.shared.sweep(), { imported: 1, dropped: 1 });
    assert.deepEqual(readdirSync(dir), ['fw_legacy.bin']);
    assert.deepEqual(Buffer.concat(await collect(images.chunks('fw_legacy'))), legacy, 'another node can now fetch it');
    assert.deepEqual(await n.shared.sweep(), { imported: 0, dropped: 0 });

    // Removing an artifact's image removes its chunks and this node's copy.
    await n.shared.remove('fw_legacy');
    assert.equal(existsSync(join(dir, 'fw_legacy.bin')), false);
    assert.deepEqual(await images.stored(['fw_legacy']), new Set());
  });
});
