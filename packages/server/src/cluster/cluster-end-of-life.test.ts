import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { DEAD_LETTER_STREAM, TELEMETRY_STREAM } from '../stream/index.js';
import { twoClusterNodes } from '../testing/cluster-nodes.js';
import { send } from '../testing/device-messages.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { eventually } from '../testing/eventually.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { env, schema } from '../testing/telemetry.js';

/**
 * Cluster mode keeps copies of readings and dead letters in the telemetry streams (for the
 * store writers, live readers and integrations reading the stream back). An erasure request
 * takes the device's messages out of them too, and the receipt counts them; another
 * device's stay.
 */
describeWith('cluster mode: end of life and the telemetry streams', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  it("an erasure request purges the device's readings and dead letters from the streams and counts them in the receipt", async (t) => {
    const nodes = await twoClusterNodes(t, nats.url);
    if (!nodes) return;
    const { a, b, admin } = nodes;
    assert.equal((await a.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    for (const [id, node] of [
      ['ce-gone', a],
      ['ce-kept', b],
    ] as const) {
      const client = await connectDevice(node, await enrollDevice(a, admin, id));
      t.after(() => client.end(true));
      for (let i = 0; i < 3; i += 1) await send(client, `devices/${id}/telemetry`, env(`m-${i}`, { temp_c: 20 + i }));
      await send(client, `devices/${id}/telemetry`, env('bad', { temp_c: 'hot' }));
    }
    // Stored by the writers (and so still in the streams, which keep messages by age and size).
    for (const id of ['ce-gone', 'ce-kept']) {
      await eventually(
        async () => (await a.api('GET', `/api/v1/devices/${id}/telemetry`, { token: admin })).body as unknown[],
        (r) => r.length === 3,
      );
      await eventually(
        async () => (await a.api('GET', `/api/v1/dead-letters?device=${id}`, { token: admin })).body as unknown[],
        (l) => l.length === 1,
      );
    }
    const nc = await connect({ servers: nats.url });
    t.after(() => nc.close());
    const jsm = await jetstreamManager(nc);
    const held = async (id: string) => {
      let n = 0;
      for (const stream of [TELEMETRY_STREAM, DEAD_LETTER_STREAM]) {
        const info = await jsm.streams.info(stream, { subjects_filter: `>` });
        for (const [subject, count] of Object.entries(info.state.subjects ?? {})) if (subject.endsWith(`.${id}`)) n += count;
      }
      return n;
    };
    assert.equal(await held('ce-gone'), 4, 'three readings and a dead letter in the streams');

    const erased = await b.api('POST', '/api/v1/devices/ce-gone/erase', { token: admin, body: { data: 'erase' } });
    assert.equal(erased.status, 200, erased.text);
    assert.deepEqual([erased.body.receipt.data.streamMessages, erased.body.receipt.data.telemetry, erased.body.receipt.data.deadLetters], [4, 3, 1]);
    assert.equal(await held('ce-gone'), 0);
    assert.equal(await held('ce-kept'), 4, "another device's messages stay");
    assert.deepEqual((await a.api('GET', '/api/v1/devices/ce-gone/telemetry', { token: admin })).body, []);
  });
});
