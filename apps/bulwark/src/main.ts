import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { addAuditCommands } from './commands/audit-log.js';
import { addSecurityAuditCommand } from './commands/security-audit.js';
import { addPrivacyCommands } from './commands/privacy.js';
import { addAuthCommands } from './commands/auth.js';
import { addBackupCommands } from './commands/backup.js';
import { addClusterCommands } from './commands/cluster.js';
import { addBatchCommand } from './commands/batch.js';
import { addCertCommands, addPkiCommands } from './commands/certs.js';
import { addDeviceCommands } from './commands/devices.js';
import { addGroupCommands } from './commands/groups.js';
import { addJobCommands } from './commands/jobs.js';
import { addDeviceOpsCommands } from './commands/device-ops.js';
import { addEndOfLifeCommands } from './commands/end-of-life.js';
import { addEnrollCommand } from './commands/enroll.js';
import { addFirmwareCommands } from './commands/firmware.js';
import { addRolloutCommands } from './commands/rollout.js';
import { addKeyCommands } from './commands/keys.js';
import { addNatsCommands } from './commands/nats.js';
import { addStartCommand } from './commands/start.js';
import { addStoreCommands } from './commands/store.js';
import { addTelemetryCommands } from './commands/telemetry.js';
import { addUserCommands } from './commands/users.js';
import { addWebhookCommands } from './commands/webhooks.js';
import { addAlertCommands } from './commands/alerts.js';
import { addSimulateCommand } from './commands/simulate.js';
import { addSchemaCommands } from './commands/schemas.js';
import { addTelemetryReadCommands } from './commands/telemetry-read.js';
import { addDlqCommands } from './commands/dlq.js';
import { addCompletionCommand } from './commands/completion.js';
import { offerOutputEverywhere } from './formats.js';
import type { Env } from './credentials.js';
import { EXIT, Exit, describeError } from './errors.js';

/**
 * The `bulwark` command. Exit codes: 0 success, 1 failure (API error, unreachable server,
 * start failure), 2 bad command line or configuration, 3 broken audit chain.
 * This is the only module that reads process.env, process.argv or sets the exit code.
 */

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

async function buildProgram(argv: readonly string[], env: Env & Record<string, string | undefined>): Promise<Command> {
  const program = new Command('bulwark')
    .description('Bulwark, the secure-by-design IoT platform: run the server, manage devices, certificates, users, keys and the audit log')
    .version(version)
    .option('--profile <name>', 'use the login saved under this name ("bulwark login --profile NAME"); default: $BULWARK_PROFILE, else the default login')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');
  // --profile may stand anywhere on the line; commands read it from the environment they were given.
  program.hook('preAction', (_program, action) => {
    const { profile } = action.optsWithGlobals<{ profile?: string }>();
    if (profile !== undefined) env.BULWARK_PROFILE = profile;
  });
  // Loading the server library takes about half a second; only `start` (or its help) needs it,
  // and `completion`, whose script lists start's options too.
  const server = argv.slice(2).some((a) => a === 'start' || a === 'completion') ? await import('@bulwark/server') : undefined;
  addStartCommand(program, env, server);
  addAuthCommands(program, env);
  addUserCommands(program, env);
  addKeyCommands(program, env);
  const devices = addDeviceCommands(program, env);
  addEnrollCommand(devices, env);
  addBatchCommand(devices, env);
  addDeviceOpsCommands(devices, env);
  addEndOfLifeCommands(program, devices, env);
  addGroupCommands(program, env);
  addJobCommands(program, env);
  addCertCommands(program, env);
  addPkiCommands(program, env);
  addTelemetryReadCommands(addTelemetryCommands(program, env), env);
  addSchemaCommands(program, env);
  addDlqCommands(program, env);
  addAuditCommands(program, env);
  addSecurityAuditCommand(program, env);
  addPrivacyCommands(program, env);
  addClusterCommands(program, env);
  addNatsCommands(program, env);
  addFirmwareCommands(program, env);
  addRolloutCommands(program, env);
  addStoreCommands(program, env);
  addBackupCommands(program, env);
  addWebhookCommands(program, env);
  addAlertCommands(program, env);
  addSimulateCommand(program, env);
  offerOutputEverywhere(program);
  addCompletionCommand(program);
  return program;
}

async function main(): Promise<number> {
  try {
    const program = await buildProgram(process.argv, { ...process.env });
    await program.parseAsync(process.argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof Exit) return err.exitCode;
    // Commander has already printed its message (unknown option, missing argument, help).
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const { text, exitCode } = describeError(err);
    console.error(text);
    return exitCode;
  }
}

// A reader that stops early (`bulwark devices list | head -1`) closes the pipe: that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    throw err;
  });
}

const exitCode = await main();
process.exitCode = exitCode;
// After a failure nothing is left to do: leave now, even if a library left a timer or a
// socket behind (a server that failed to start must not hang the operator's shell).
if (exitCode !== EXIT.ok) process.exit(exitCode);
