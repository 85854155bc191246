import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { duration, positiveInt } from '../args.js';
import { normalizeUrl, openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, EXIT, Exit } from '../errors.js';
import { printJson } from '../output.js';

interface SimulateOptions {
  scenario?: string;
  devices?: number;
  rate?: number;
  duration?: number;
  url?: string;
  mqtt?: string;
  deviceHttps?: string;
  artifact?: string;
  out?: string;
  agentLog?: string;
  workers?: number;
  json?: boolean;
}

const rate = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 86_400) throw new CliError('BULWARK_CLI_USAGE', "--rate: seconds between one device's readings, 0.1 to 86400", EXIT.usage);
  return n;
};

/** `bulwark simulate`: virtual devices running the real agent against a deployment, with a report and a verdict. */
export function addSimulateCommand(program: Command, env: Env): void {
  program
    .command('simulate')
    .description("run virtual devices (the real agent, many per process) against a Bulwark deployment, impair their network per phase, and write a report (Markdown, SVG, JSON) with a verdict against the scenario's targets; exit 1 when a target is missed")
    .option('--scenario <file>', 'the scenario, JSON or YAML (examples/scenarios/); flags override it')
    .option('--devices <n>', 'how many virtual devices', positiveInt(100_000))
    .option('--rate <seconds>', "seconds between one device's readings", rate)
    .option('--duration <duration>', 'how long devices send readings (30s, 10m, 2h)', duration)
    .option('--url <url>', "the platform's HTTP API (default: the scenario's, BULWARK_URL or the saved login)")
    .option('--mqtt <url>', "the platform's device MQTT endpoint, mqtts://host:port (default: the scenario's, else port 8883 of --url's host)")
    .option('--device-https <url>', "the platform's device HTTPS listener for firmware downloads, https://host:port (default: the scenario's, else port 8443 of the MQTT host)")
    .option('--artifact <id>', "the firmware artifact the scenario's rollout deploys (over the scenario's)")
    .option('--out <dir>', 'where the report goes (default: ./simulation-<scenario>)')
    .option('--workers <n>', 'processes that run the devices, this one included (default 1; up to the number of cores is useful)', positiveInt(64))
    .option('--agent-log <file>', "write the virtual devices' own log lines (info and up: refusals, reconnects) to this file, each after its device id")
    .option('--json', 'print the report as JSON on stdout (progress still goes to stderr)')
    .action(async (o: SimulateOptions) => {
      const sim = await import('../simulate/index.js');
      let scenario;
      try {
        const base = o.scenario === undefined ? {} : sim.withFilesFrom(dirname(resolve(o.scenario)), sim.parseScenarioText(readFileSync(resolve(o.scenario), 'utf8'), o.scenario));
        scenario = sim.scenarioFromFlags({ devices: o.devices, rateSeconds: o.rate, durationMs: o.duration, artifact: o.artifact }, base);
      } catch (err) {
        if (err instanceof sim.ScenarioError) throw new CliError('BULWARK_CLI_SCENARIO', err.message, EXIT.usage);
        throw new CliError('BULWARK_CLI_SCENARIO', `${o.scenario}: ${(err as Error).message}`, EXIT.usage);
      }
      const url = o.url ?? scenario.server.url;
      const session = openSession(url === undefined ? env : { ...env, BULWARK_URL: normalizeUrl(url, '--url') });
      const mqttUrl = o.mqtt ?? scenario.server.mqtt ?? `mqtts://${new URL(session.url).hostname}:8883`;
      const problems = await sim.preflight({ session, mqttUrl, scenario });
      if (problems.length > 0) throw new CliError('BULWARK_CLI_SIMULATE_PREFLIGHT', `cannot start the simulation:\n${problems.map((p) => `  ${p}`).join('\n')}`, EXIT.usage);
      const say = (line: string) => process.stderr.write(`${line}\n`);
      say(`simulating ${scenario.devices} devices for ${scenario.durationMs / 1000} s against ${session.url} (devices at ${mqttUrl})`);
      // Written as they come (a process that ends at once loses nothing buffered).
      const log = o.agentLog === undefined ? undefined : openSync(resolve(o.agentLog), 'a', 0o600);
      let result;
      try {
        result = await sim.runSimulation({ scenario, session, mqttUrl, deviceHttpsUrl: o.deviceHttps, say, workers: o.workers, agentLog: log === undefined ? undefined : (id, line) => void writeSync(log, `${id} ${line}\n`) });
      } finally {
        if (log !== undefined) closeSync(log);
      }
      const out = resolve(o.out ?? `simulation-${scenario.name}`);
      mkdirSync(out, { recursive: true });
      const command = ['bulwark', 'simulate', ...process.argv.slice(3)].join(' ');
      writeFileSync(join(out, 'report.md'), sim.reportMarkdown(result, 'report.svg', command));
      writeFileSync(join(out, 'report.svg'), sim.reportSvg(result));
      const json = sim.reportJson(result);
      writeFileSync(join(out, 'report.json'), `${JSON.stringify(json, null, 2)}\n`);
      const v = sim.verdicts(result, sim.figures(result));
      if (o.json) printJson(json);
      else process.stdout.write(`${sim.verdictLine(v)}\nreport: ${join(out, 'report.md')}\n`);
      if (v.some((x) => !x.met)) throw new Exit(EXIT.failure);
    });
}
