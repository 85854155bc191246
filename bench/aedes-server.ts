import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:tls';
import { Aedes } from 'aedes';

/**
 * Plain Aedes over mutual TLS, no hooks: the pass-through reference broker. Run as a child
 * process by bench/run.ts; reads BENCH_TLS_CA / BENCH_TLS_CERT / BENCH_TLS_KEY, listens on a
 * free port on 127.0.0.1 and prints {"port": n, "pid": n} on stdout. Exits when stdin closes.
 */
const file = (name: string) => readFileSync(process.env[name] ?? '', 'utf8');
const broker = new Aedes();
await broker.listen();
const server = createServer({ ca: file('BENCH_TLS_CA'), cert: file('BENCH_TLS_CERT'), key: file('BENCH_TLS_KEY'), requestCert: true, rejectUnauthorized: true });
server.on('secureConnection', (socket) => broker.handle(socket));
server.on('tlsClientError', () => undefined);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port, pid: process.pid })}\n`);

const stop = () => {
  server.close();
  broker.close(() => process.exit(0));
};
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
