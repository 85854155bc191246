import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type AgentConfigInput, createAgent } from '@bulwark/agent';

/**
 * An example device: an environment sensor that reads temperature and humidity every
 * `intervalS` seconds (remote-configurable through the twin), and takes a `reboot` command.
 * Run: node --import tsx examples/env-sensor/device.ts examples/env-sensor/agent.json
 */
const file = resolve(process.argv[2] ?? 'examples/env-sensor/agent.json');
const input = JSON.parse(readFileSync(file, 'utf8')) as AgentConfigInput;
const agent = await createAgent({ ...input, dataDir: resolve(dirname(file), input.dataDir) }, { battery: () => 87 });

let intervalS = 10;
let timer: NodeJS.Timeout | undefined;
const schedule = () => {
  if (timer) clearInterval(timer);
  timer = setInterval(() => {
    const reading = { temp_c: Math.round((21 + Math.sin(Date.now() / 60_000) * 3) * 10) / 10, rh_pct: Math.round(40 + Math.random() * 5) };
    agent.send('env-sensor@2', reading).then(
      ({ seq }) => agent.log.info('reading queued', { seq, ...reading }),
      (err: unknown) => agent.log.error('send failed', { err: String(err) }),
    );
  }, intervalS * 1000);
};
schedule();

agent.onConfig<{ intervalS: number }>({ type: 'object', required: ['intervalS'], properties: { intervalS: { type: 'integer', minimum: 1, maximum: 3600 } } }, (config) => {
  intervalS = config.intervalS;
  schedule();
});

agent.onCommand<{ delayS: number }>('reboot', { type: 'object', required: ['delayS'], properties: { delayS: { type: 'integer', minimum: 0, maximum: 300 } } }, ({ delayS }) => {
  setTimeout(() => void agent.close('reboot_command').then(() => process.exit(0)), delayS * 1000);
  return { rebootingInS: delayS };
});

agent.on('state', (s) => console.log(`[env-sensor] ${s}; queue ${agent.status().queue.depth}`));
process.on('SIGINT', () => void agent.close().then(() => process.exit(0)));
