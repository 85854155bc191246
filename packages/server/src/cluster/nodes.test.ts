import assert from 'node:assert/strict';
import { it } from 'node:test';
import { silentLogger } from '@bulwark/core';
import { describeWith, startNats } from '../testing/services.js';
import { NatsLink } from './nats.js';
import { ClusterNodes } from './nodes.js';

const facts = { sessions: () => 0, leads: () => [], draining: () => false };

describeWith('cluster node heartbeats on a real nats-server', ['nats-server'], () => {
  it('fences a node whose beats come late: the others clean what it held once, and its next beat tells it to claim its sessions again', async (t) => {
    const nats = await startNats();
    t.after(() => nats.stop());
    const [la, lb] = await Promise.all([NatsLink.connect(nats.url, 'node-a', silentLogger), NatsLink.connect(nats.url, 'node-b', silentLogger)]);
    t.after(() => Promise.all([la.close(), lb.close()]));
    // A lease far longer than the test: no entry expires in NATS by itself; only the heartbeat times say who is late.
    const leaseMs = 60_000;
    let lagMs = 0;
    const events: string[] = [];
    const open = (link: NatsLink, id: string, now: () => number) =>
      ClusterNodes.open(link, { id, version: 'test', startedAt: 0 }, facts, {
        leaseMs,
        log: silentLogger,
        now,
        onGone: async (gone, decidedAt) => void events.push(`${id}: ${gone} gone, decided ${decidedAt <= Date.now() ? 'before the mark' : 'in the future'}`),
        onLeaseLost: async () => void events.push(`${id}: lease lost`),
      });
    const a = await open(la, 'node-a', () => Date.now() - lagMs);
    const b = await open(lb, 'node-b', Date.now);
    t.after(() => Promise.all([a.stop(), b.stop()]));
    await a.beat();
    await b.beat();
    assert.deepEqual(
      (await b.list()).map((n) => [n.id, n.alive]),
      [
        ['node-a', true],
        ['node-b', true],
      ],
    );

    // A's beats now land with a time older than the lease (a stall, a slow server): B sees A silent.
    lagMs = 2 * leaseMs;
    await a.beat();
    await b.beat();
    assert.deepEqual(events, ['node-b: node-a gone, decided before the mark']);
    assert.deepEqual(
      (await b.list()).map((n) => n.id),
      ['node-b'],
      "A's heartbeat entry was taken away",
    );
    await b.beat();
    assert.equal(events.length, 1, 'a gone node is cleaned once');

    // A's next beat finds its entry gone: it is told, and is back in the listing.
    lagMs = 0;
    await a.beat();
    assert.deepEqual(events.slice(1), ['node-a: lease lost']);
    await b.beat();
    assert.deepEqual(
      (await b.list()).map((n) => [n.id, n.alive]),
      [
        ['node-a', true],
        ['node-b', true],
      ],
    );
    assert.equal(events.length, 2);
  });
});
