import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type * as ServerModule from '@bulwark/server';
import type { BulwarkServer, ServerConfig } from '@bulwark/server';
import type { Env } from '../credentials.js';
import { CliError, EXIT, describeError } from '../errors.js';
import { formatBanner } from './banner.js';

type Server = typeof ServerModule;

/** How long a graceful stop may take before the process gives up and exits 1. */
const STOP_TIMEOUT_MS = 15_000;

/**
 * `bulwark start`: one flag per setting that declares one in the server's schema (so new
 * settings get their flag for free), plus --config. `server` is undefined when this run
 * is not about `start`, which keeps every other command from loading the whole platform.
 */
export function addStartCommand(program: Command, env: Env, server: Server | undefined): void {
  const cmd = program
    .command('start')
    .description('run the platform in this process: SQLite in the data directory by default, or PostgreSQL with --store postgres://...')
    .option('--config <file>', 'JSON config file, e.g. {"http": {"port": 8080}} (default: $BULWARK_CONFIG)');
  const flagKeys = new Map<string, string>();
  for (const s of server?.SETTINGS ?? []) {
    if (s.flag === undefined) continue;
    const value = s.type === 'integer' ? 'n' : s.type === 'enum' ? 'choice' : 'value';
    const choices = s.type === 'enum' ? ` One of: ${(s.values ?? []).join(', ')}.` : '';
    // A boolean setting is a switch: `--coap` turns it on (loadConfig takes the boolean as is).
    const spec = s.type === 'boolean' ? s.flag : `${s.flag} <${value}>`;
    const option = new Option(spec, `${s.description}${choices} (${server?.envName(s.key)}; default ${JSON.stringify(s.default)})`);
    cmd.addOption(option);
    flagKeys.set(option.attributeName(), s.key);
  }
  cmd.action(async (opts: Record<string, unknown>) => {
    if (server === undefined) throw new Error('the server library was not loaded');
    const flags: Record<string, unknown> = {};
    for (const [attribute, key] of flagKeys) if (opts[attribute] !== undefined) flags[key] = opts[attribute];
    const configFile = typeof opts.config === 'string' ? opts.config : env.BULWARK_CONFIG || undefined;
    await run(server, configFor(server, flags, configFile, env));
  });
}

/** The configuration from flags, environment and file; every problem reported at once (exit 2). */
function configFor(server: Server, flags: Record<string, unknown>, fileName: string | undefined, env: Env): ServerConfig {
  const problems: string[] = [];
  let file: unknown;
  if (fileName !== undefined) {
    try {
      file = JSON.parse(readFileSync(fileName, 'utf8'));
    } catch (err) {
      problems.push(`${fileName}: ${err instanceof SyntaxError ? 'not valid JSON' : 'cannot be read'}: ${(err as Error).message}`);
    }
  }
  try {
    const config = server.loadConfig({ flags, env, ...(file !== undefined && fileName !== undefined ? { file, fileName } : {}) });
    if (problems.length === 0) return config;
  } catch (err) {
    const listed = (err as { details?: { problems?: unknown } }).details?.problems;
    if (!Array.isArray(listed)) throw err;
    problems.push(...listed.map(String));
  }
  throw new CliError('BULWARK_ERR_CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`, EXIT.usage);
}

async function run(server: Server, config: ServerConfig): Promise<void> {
  const platform = await server.buildServer(config);
  let url: string;
  try {
    url = await platform.start();
  } catch (err) {
    // The listeners start in order: HTTP API, MQTT gateway, device HTTPS. The first not up failed.
    const failed = !platform.app.server.listening ? 'http' : config.mqtt.enabled && platform.mqttPort === 0 ? 'mqtt' : 'deviceHttp';
    await platform.stop().catch(() => undefined);
    throw explainListenError(err, config, failed);
  }
  stopOnSignals(platform);
  console.log(
    formatBanner({
      version: server.VERSION,
      url,
      host: config.http.host,
      mqtt: config.mqtt.enabled ? { host: config.mqtt.host, port: platform.mqttPort } : undefined,
      deviceHttp: config.deviceHttp.enabled ? { host: config.deviceHttp.host, port: platform.deviceHttpPort } : undefined,
      coap: config.coap.enabled ? { host: config.coap.host, port: platform.coapPort } : undefined,
      dataDir: resolve(config.dataDir),
      storeEngine: platform.store.engine,
      storeLocation: platform.store.location,
      // A NATS URL may carry a password: never printed.
      bus: config.bus === 'memory' ? 'memory (embedded)' : `nats ${config.bus.replace(/\/\/([^:@/]*):[^@/]*@/g, '//$1:***@')} as node ${platform.nodeId}`,
      logLevel: config.log.level,
      adminCreated: platform.firstStart.adminKey !== undefined,
      adminKeyFile: platform.firstStart.adminKeyFile,
      adminKeyPreset: config.bootstrapAdminKey !== undefined,
      masterKeyPath: platform.firstStart.masterKeyCreatedAt,
      ...(config.http.tls ? { apiTls: { caFile: platform.apiCaFile } } : {}),
    }),
  );
}

function explainListenError(err: unknown, config: ServerConfig, listener: 'http' | 'mqtt' | 'deviceHttp'): unknown {
  const code = (err as { code?: unknown }).code;
  const { host, port } = config[listener];
  const where = `${host}:${port}`;
  const flag = listener === 'deviceHttp' ? 'device-http' : listener;
  if (code === 'EADDRINUSE') return new CliError(code, `${where} is already in use: stop the other process, or pick another port with --${flag}-port (0 picks a free one)`);
  if (code === 'EADDRNOTAVAIL') return new CliError(code, `${host} is not an address of this machine (--${flag}-host)`);
  if (code === 'EACCES') return new CliError(code, `not allowed to listen on ${where} (ports below 1024 need privileges)`);
  return err;
}

/** SIGINT or SIGTERM stops the server gracefully and exits 0; a second signal exits at once. */
function stopOnSignals(platform: BulwarkServer): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`${signal} again: exiting without waiting for the graceful stop`);
      process.exit(EXIT.failure);
    }
    stopping = true;
    console.log(`${signal} received: stopping…`);
    setTimeout(() => {
      console.error(`error: the server did not stop within ${STOP_TIMEOUT_MS / 1000} s`);
      process.exit(EXIT.failure);
    }, STOP_TIMEOUT_MS).unref();
    platform.stop().then(
      () => {
        console.log('Bulwark stopped.');
        process.exit(EXIT.ok);
      },
      (err: unknown) => {
        console.error(describeError(err).text);
        process.exit(EXIT.failure);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
