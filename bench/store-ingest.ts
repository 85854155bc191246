import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '@bulwark/core';
import { openStore } from '../packages/server/src/store/index.js';
import type { TelemetryRecord } from '../packages/server/src/ingest/index.js';

const { values: o } = parseArgs({ options: { readings: { type: 'string', default: '200000' }, devices: { type: 'string', default: '500' }, batch: { type: 'string', default: '25' } } });
const [total, devices, batch] = [Number(o.readings), Number(o.devices), Number(o.batch)];
const dir = mkdtempSync(join(tmpdir(), 'store-ingest-'));
const store = await openStore({ engine: 'sqlite', location: join(dir, 'bulwark.db') }, systemClock);
const seq = new Array<number>(devices).fill(0);
let n = 0;
const t0 = Date.now();
const next = (): TelemetryRecord => {
  const d = n % devices;
  n += 1;
  const s = (seq[d] = (seq[d] ?? 0) + 1);
  const ts = t0 + Math.floor((n * 1000) / 5000);
  return { deviceId: `dev-${d}`, msgId: `m-${d}-${s}`, schemaId: 'bench@1', seq: s, boot: 'b1', deviceTs: ts, receivedAt: ts, ts, skewMs: 0, data: { v: s, a: s % 100 === 0 ? 1 : 0 } };
};
const window = async (label: string, count: number) => {
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < count; i += batch) await store.telemetry.insertBatch(Array.from({ length: batch }, next));
  const used = process.cpuUsage(cpu);
  console.log(
    `${label}: ${count} readings in batches of ${batch}: ${((used.user + used.system) / count).toFixed(1)} µs CPU per reading (user ${(used.user / count).toFixed(1)}, system ${(used.system / count).toFixed(1)}), ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
};
await window('warm-up', Math.min(total, 50_000));
for (let r = 1; r <= 4; r += 1) await window(`round ${r}`, 20_000);
await store.close();
rmSync(dir, { recursive: true, force: true });
