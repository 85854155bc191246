import { buildServer, loadConfig } from '../packages/server/src/index.js';

/**
 * A real Bulwark server for the benchmark, in its own process so that its CPU and memory
 * are measured apart from the load generator. Settings: BENCH_BULWARK_CONFIG (JSON, nested
 * as in a config file) over Bulwark's defaults; BULWARK_BOOTSTRAP_ADMIN_KEY creates the
 * admin key. Prints {"url", "mqttPort", "pid"} on stdout once listening; stops cleanly on
 * SIGTERM (so that --cpu-prof writes its profile) and when stdin closes.
 */
const file = JSON.parse(process.env.BENCH_BULWARK_CONFIG ?? '{}') as Record<string, unknown>;
const adminKey = process.env.BULWARK_BOOTSTRAP_ADMIN_KEY;
const config = loadConfig({ file, fileName: 'bench settings', env: adminKey ? { BULWARK_BOOTSTRAP_ADMIN_KEY: adminKey } : {} });
const server = await buildServer(config);
const url = await server.start();
process.stdout.write(`${JSON.stringify({ url, mqttPort: server.mqttPort, pid: process.pid })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.stop().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`bulwark-server: stop failed: ${String(err)}\n`);
    process.exit(1);
  });
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
