import { silentLogger } from '@bulwark/core';
import { AlertEvaluator } from '../packages/server/src/alerts/evaluator.js';
import { checkRule } from '../packages/server/src/alerts/rule-input.js';
import type { AlertRule } from '../packages/server/src/alerts/alerts.js';
import type { TelemetryRecord } from '../packages/server/src/ingest/index.js';
import { benchRules } from './alerts.js';

/**
 * node --import tsx bench/alert-evaluation.ts [rules] [devices]
 *
 * The evaluator alone, in this process: the alerts phase's rules (100 by default: one fires
 * on 1 % of readings, the rest stay quiet) over 500 devices, readings fed in order with a
 * sink that only counts. Prints the CPU per reading (the JSON parse of each reading
 * included, as the pipeline has done it before the evaluator sees it) and the fires.
 */
const rulesCount = Number(process.argv[2] ?? 100);
const devices = Number(process.argv[3] ?? 500);
const fields = async () =>
  new Map([
    ['a', { numeric: true, concealed: false }],
    ['v', { numeric: true, concealed: false }],
  ]);
const rules: AlertRule[] = [];
for (const [i, input] of benchRules(rulesCount).entries()) rules.push({ id: `rule-${i}`, ...(await checkRule(input, fields)), builtIn: false, createdBy: 'bench', createdAt: 1, updatedAt: 1 });

let now = 1_000_000;
let fires = 0;
const evaluator = new AlertEvaluator({
  clock: { now: () => now },
  log: silentLogger,
  facts: async () => ({ tags: [], model: null, groups: [] }),
  online: async () => true,
  sink: { fire: async () => void (fires += 1), clear: async () => undefined, mayBeOpen: () => true },
  anomaly: () => ({ update: () => undefined }),
});
evaluator.setRules(rules);

const feed = (rounds: number, from: number) => {
  for (let seq = from; seq < from + rounds; seq += 1) {
    for (let d = 0; d < devices; d += 1) {
      now += 0.2;
      const data = JSON.parse(`{"v":${seq},"a":${(seq + d) % 100 === 0 ? 1 : 0}}`) as Record<string, unknown>;
      const record: TelemetryRecord = { deviceId: `dev-${d}`, msgId: `${d}-${seq}`, schemaId: 'bench-alerts@1', seq, boot: null, deviceTs: null, receivedAt: now, ts: now, skewMs: null, data };
      evaluator.observe(record);
    }
  }
};
// The first readings load each device's facts (a promise each) and make its plans.
feed(2, 0);
await new Promise((resolve) => setTimeout(resolve, 50));
feed(50, 2);
const rounds = 200;
fires = 0;
const before = process.cpuUsage();
feed(rounds, 52);
const used = process.cpuUsage(before);
console.log(`${rulesCount} rules, ${devices} devices: ${((used.user + used.system) / (rounds * devices)).toFixed(2)} µs of CPU per reading; ${fires} fires in ${rounds * devices} readings`);
evaluator.stop();
