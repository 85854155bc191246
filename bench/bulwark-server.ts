import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { buildServer, loadConfig } from '../packages/server/src/index.js';

/**
 * A real Bulwark server for the benchmark, in its own process so that its CPU and memory
 * are measured apart from the load generator. Settings: BENCH_BULWARK_CONFIG (JSON, nested
 * as in a config file) over Bulwark's defaults; BULWARK_BOOTSTRAP_ADMIN_KEY creates the
 * admin key on the first start. Prints {"url", "mqttPort", "controlPort", "pid"} on stdout
 * once listening; stops cleanly on SIGTERM (so that --cpu-prof writes its profile) and when
 * stdin closes. The control port (loopback, bench only) answers GET with {"pending": n}, the
 * messages in the ingest pipeline, so that the bench can wait for them to drain.
 */
const file = JSON.parse(process.env.BENCH_BULWARK_CONFIG ?? '{}') as Record<string, unknown>;
const adminKey = process.env.BULWARK_BOOTSTRAP_ADMIN_KEY;
// Cluster mode: every node is given the master key that opens the store (the bench's cluster phase).
const masterKey = process.env.BULWARK_MASTER_KEY;
const config = loadConfig({
  file,
  fileName: 'bench settings',
  env: { ...(adminKey ? { BULWARK_BOOTSTRAP_ADMIN_KEY: adminKey } : {}), ...(masterKey ? { BULWARK_MASTER_KEY: masterKey } : {}) },
});
const server = await buildServer(config);
const url = await server.start();
const control = createServer((_req, res) => res.end(JSON.stringify({ pending: server.ingest.pending })));
await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
const controlPort = (control.address() as AddressInfo).port;
process.stdout.write(`${JSON.stringify({ url, mqttPort: server.mqttPort, controlPort, pid: process.pid })}\n`);

// BENCH_MEMORY_LOG=FILE: a line a second with the main thread's memory, the pipeline's depth, event-loop stalls and GC pauses.
const memoryLog = process.env.BENCH_MEMORY_LOG;
const mb = (n: number) => Math.round(n / 2 ** 20);
if (memoryLog) {
  // Also the longest event-loop stall and the longest and total GC pause of each second, to tell the two apart.
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  let gcMax = 0;
  let gcTotal = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMax = Math.max(gcMax, e.duration);
      gcTotal += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    const m = process.memoryUsage();
    const line = {
      t: new Date().toISOString(),
      rss: mb(m.rss),
      heapTotal: mb(m.heapTotal),
      heapUsed: mb(m.heapUsed),
      external: mb(m.external),
      arrayBuffers: mb(m.arrayBuffers),
      pending: server.ingest.pending,
      loopMaxMs: Math.round(loop.max / 1e6),
      gcMaxMs: Math.round(gcMax),
      gcTotalMs: Math.round(gcTotal),
    };
    loop.reset();
    gcMax = 0;
    gcTotal = 0;
    appendFileSync(memoryLog, `${JSON.stringify(line)}\n`);
  }, 1000).unref();
}

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  control.close();
  server.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bulwark-server: stop failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
