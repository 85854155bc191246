import { readFileSync } from 'node:fs';
import { createAgent } from '../create-agent.js';
import type { AgentConfigInput } from '../config.js';

/**
 * Test-only child process: `node --import tsx send-driver.ts CONFIG.json COUNT`. Sends COUNT
 * readings in groups of 50 and prints `ok <id>` for each reading whose `send` resolved (so
 * the parent knows exactly what the agent accepted), then `drained` whenever the queue is
 * empty and acknowledged. Killed with SIGKILL by the test.
 */
const [configFile, countArg] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configFile ?? '', 'utf8')) as AgentConfigInput;
const count = Number(countArg ?? 0);
const agent = await createAgent(config);
agent.on('drained', () => process.stdout.write('drained\n'));
for (let n = 1; n <= count; n += 50) {
  const batch = [];
  for (let i = n; i < Math.min(n + 50, count + 1); i += 1) batch.push(agent.send('env-sensor@2', { n: i }).then(({ id }) => process.stdout.write(`ok ${id}\n`)));
  await Promise.all(batch);
}
process.stdout.write('sent\n');
process.on('SIGTERM', () => void agent.close().then(() => process.exit(0)));
