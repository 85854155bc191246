import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { FaultProxy } from './testing/proxy.js';
import { agentConfig, startAgent, startPlatform, until } from './testing/platform.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The network cut, half blackhole and half refused connections: 10 s in `npm test`,
 * BULWARK_TEST_AGENT_CUT_MS=30000 in `npm run test:long`. Either half outlasts the agent's
 * dead-connection detection (ackTimeoutMs 2 s below) and its connect timeout (3 s).
 */
const CUT_MS = Number(process.env.BULWARK_TEST_AGENT_CUT_MS ?? 10_000);
/** The backlog the cut must leave: 500 readings for 30 s (a third of what is sent meanwhile), in proportion for a shorter cut. */
const BACKLOG_MIN = Math.floor((500 * CUT_MS) / 30_000);

describe('network faults through a TCP proxy in front of the platform', () => {
  it(`a ${CUT_MS / 1000} s cut (${CUT_MS / 2000} s blackhole, then ${CUT_MS / 2000} s of dropped connections) while sending: bounded backlog, drained after, zero loss, zero duplicates`, async (t) => {
    const p = await startPlatform(t);
    const proxy = new FaultProxy(p.mqttPort);
    t.after(() => proxy.close());
    await proxy.start();
    const maxItems = 5000;
    const agent = await startAgent(await agentConfig(t, p, 'cut-1', { queue: { maxItems, ackTimeoutMs: 2000 } }, proxy.port));
    await once(agent, 'connected');
    const accepted: string[] = [];
    let maxDepth = 0;
    let sending = true;
    const sender = (async () => {
      for (let n = 1; sending; n += 1) {
        accepted.push((await agent.send('env-sensor@2', { n })).id);
        maxDepth = Math.max(maxDepth, agent.status().queue.depth);
        await sleep(20);
      }
    })();
    await sleep(1000);
    proxy.blackhole(true);
    await sleep(CUT_MS / 2);
    proxy.cut();
    proxy.refuse(true);
    await sleep(CUT_MS / 2);
    const during = agent.status();
    proxy.blackhole(false);
    proxy.refuse(false);
    await sleep(1000);
    sending = false;
    await sender;
    await until('the backlog drains', () => agent.status().queue.depth === 0 && agent.status().queue.inflight === 0, 30_000);
    const rows = await p.readings('cut-1');
    const ids = new Set(rows.map((r) => r.msgId));
    const missing = accepted.filter((id) => !ids.has(id));
    const s = agent.status();
    console.log(
      `network cut: ${accepted.length} sent, backlog at the end of the cut ${during.queue.depth} (max seen ${maxDepth}, bound ${maxItems}), ${rows.length} stored, ${missing.length} missing, ${s.reconnects} reconnects, ${s.attempts} attempts, platform duplicates ${await p.metric(/bulwark_ingest_messages_total\{transport="mqtt",outcome="duplicate"\} (\d+)/)}`,
    );
    assert.ok(during.queue.depth > BACKLOG_MIN, `the backlog built up during the cut (${during.queue.depth} readings, more than ${BACKLOG_MIN})`);
    assert.ok(maxDepth <= maxItems);
    assert.deepEqual(missing, []);
    assert.equal(rows.length, ids.size, 'no reading stored twice');
    assert.equal(rows.length, accepted.length + 0, 'nothing more than was sent');
    assert.equal(s.queue.dropped_count + s.queue.dropped_bytes + s.queue.dropped_age, 0);
  });

  it('past its bound the queue drops the oldest readings and counts them', async (t) => {
    const p = await startPlatform(t);
    const proxy = new FaultProxy(p.mqttPort);
    t.after(() => proxy.close());
    await proxy.start();
    const agent = await startAgent(await agentConfig(t, p, 'bound-1', { queue: { maxItems: 200, ackTimeoutMs: 1000 } }, proxy.port));
    await until('the boot event is delivered', () => agent.status().state === 'online' && agent.status().queue.depth === 0);
    proxy.blackhole(true);
    for (let n = 1; n <= 1000; n += 1) await agent.send('env-sensor@2', { n });
    assert.equal(agent.status().queue.depth, 200);
    assert.equal(agent.status().queue.dropped_count, 800);
    await until('the stalled session is dropped', () => agent.status().state !== 'online', 10_000);
    proxy.blackhole(false);
    await until('the kept readings drain', () => agent.status().queue.depth === 0, 30_000);
    const kept = (await p.readings('bound-1')).map((r) => r.data.n as number).sort((a, b) => a - b);
    assert.deepEqual(
      kept,
      Array.from({ length: 200 }, (_, i) => 801 + i),
      'the newest 200 arrive, the oldest 800 were dropped',
    );
  });
});
