import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import type { Agent } from './agent.js';
import { QueueDatabase } from './queue-db.js';
import { agentConfig, startAgent, startPlatform, until } from './testing/platform.js';
import { Validator } from './validator.js';

const AGENTS = 50;
const READINGS = 20;
const BLINK = { type: 'object', required: ['times'], properties: { times: { type: 'integer', minimum: 1, maximum: 10 } } };

it(`${AGENTS} agents in one process share one queue database and one validator, and every reading arrives once`, async (t) => {
  const p = await startPlatform(t);
  const gatewayDir = mkdtempSync(join(tmpdir(), 'bulwark-gateway-'));
  const queues = new QueueDatabase(join(gatewayDir, 'queues.db'));
  const validator = new Validator();
  const deps = { queues, validator };
  const ids = Array.from({ length: AGENTS }, (_, i) => `gw-dev-${String(i).padStart(2, '0')}`);
  const configs = await Promise.all(ids.map((id) => agentConfig(t, p, id)));
  const agents: Agent[] = await Promise.all(configs.map((c) => startAgent(c, deps)));
  // Registered after the agents' own closers (hooks run in order), so the file is closed after them.
  t.after(() => {
    queues.close();
    rmSync(gatewayDir, { recursive: true, force: true });
  });
  for (const a of agents) a.onCommand('blink', BLINK, () => ({ blinked: true }));
  assert.equal(validator.compiles, 4, 'the three built-in command schemas and blink, once for all agents');
  assert.deepEqual(
    configs.filter((c) => existsSync(join(c.dataDir, 'queue.db'))),
    [],
    'no agent has a queue file of its own',
  );
  assert.equal(queues.open, AGENTS);

  const commitsBefore = queues.commits;
  // All readings in the same tick, most of them before the agents are online.
  await Promise.all(agents.flatMap((a) => Array.from({ length: READINGS }, (_, n) => a.send('env-sensor@2', { n: n + 1 }))));
  assert.ok(queues.commits - commitsBefore <= 2, `${AGENTS * READINGS} readings of ${AGENTS} agents in ${queues.commits - commitsBefore} group commit(s)`);

  const delivered = async (id: string, count: number) => {
    await until(`${count} readings of ${id} stored`, async () => (await p.readings(id)).length >= count, 60_000);
    const ns = (await p.readings(id)).map((r) => r.data.n as number).sort((x, y) => x - y);
    assert.deepEqual(
      ns,
      Array.from({ length: count }, (_, n) => n + 1),
      `${id}: every reading once`,
    );
  };
  for (const id of ids) await delivered(id, READINGS);
  await until('every queue drained', () => agents.every((a) => a.status().queue.depth === 0), 30_000);
  for (const a of agents) assert.deepEqual([a.status().queue.queued, a.status().queue.acked], [READINGS + 1, READINGS + 1], `${a.config.deviceId}: its readings and its boot event, counted on it alone`);

  // One agent stops: the file stays open for the others; started again, it finds its part of the file.
  const [first, second] = agents;
  await first?.close();
  assert.deepEqual([queues.closed, queues.open], [false, AGENTS - 1]);
  await second?.send('env-sensor@2', { n: READINGS + 1 });
  await delivered(ids[1] ?? '', READINGS + 1);
  const restarted = await startAgent(configs[0]!, deps);
  assert.equal(restarted.status().queue.queued, READINGS + 1, 'its counters survived the restart');
  await restarted.send('env-sensor@2', { n: READINGS + 1 });
  await delivered(ids[0] ?? '', READINGS + 1);
  assert.equal(validator.compiles, 4, 'the restarted agent compiled nothing new');
});
