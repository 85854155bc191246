import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AgentConfigError, type AgentConfigInput, createAgent } from '@bulwark/agent';

/**
 * `bulwark-agent --config FILE`: runs the device agent from a JSON config file (see
 * docs/guides/agent.md). Enrolls on the first start when there is no certificate and the
 * file names a claim token. Relative paths in the file are relative to the file.
 * SIGINT / SIGTERM close the agent cleanly (the queue keeps what is not acknowledged).
 * After a firmware update switched slots the agent asks for a reboot: the process exits
 * with status 75 (EX_TEMPFAIL) for its supervisor to start it again (systemd:
 * Restart=on-failure or Restart=always).
 */
const USAGE = 'usage: bulwark-agent --config FILE';

function configPath(argv: string[]): string {
  const i = argv.indexOf('--config');
  const file = i >= 0 ? argv[i + 1] : undefined;
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!file) {
    console.error(USAGE);
    process.exit(2);
  }
  return resolve(file);
}

const file = configPath(process.argv.slice(2));
let input: AgentConfigInput;
try {
  input = JSON.parse(readFileSync(file, 'utf8')) as AgentConfigInput;
} catch (err) {
  console.error(`cannot read ${file}: ${(err as Error).message}`);
  process.exit(2);
}
const base = dirname(file);
const identity = input.identity?.dir ? { ...input.identity, dir: resolve(base, input.identity.dir) } : input.identity;
const ota = input.ota ? { ...input.ota, rootKeysFile: resolve(base, input.ota.rootKeysFile) } : undefined;
const config: AgentConfigInput = { ...input, dataDir: resolve(base, input.dataDir), ...(identity ? { identity } : {}), ...(ota ? { ota } : {}) };
const REBOOT_EXIT_STATUS = 75;

try {
  const agent = await createAgent(config);
  agent.log.info('agent started', { deviceId: agent.config.deviceId, boot: agent.boot, certificate: agent.status().certificate.serial });
  agent.on('state', (state) => agent.log.info(`connection ${state}`, { queueDepth: agent.status().queue.depth }));
  agent.on('refused', (r) => agent.log.error('the platform refused this device', r));
  agent.on('ota', (e) => {
    if (e.type === 'state') agent.log.info(`firmware update ${e.state}`, { jobId: e.jobId, ...(e.reason ? { reason: e.reason } : {}) });
  });
  agent.on('reboot', () => {
    agent.log.info('restarting into the active firmware slot', { firmware: agent.status().firmware });
    process.exit(REBOOT_EXIT_STATUS);
  });
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    void agent.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (err) {
  console.error(err instanceof AgentConfigError ? err.message : `bulwark-agent: ${(err as Error).message}`);
  process.exit(err instanceof AgentConfigError ? 2 : 1);
}
