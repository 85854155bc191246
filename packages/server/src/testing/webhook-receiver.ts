import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** Test-only: a webhook receiver on 127.0.0.1:0 that records every request and answers as told. */

export interface ReceivedDelivery {
  readonly at: number;
  readonly headers: IncomingMessage['headers'];
  readonly raw: string;
  readonly body: { id: string; subscription: string; test?: boolean; readings: { id: string; deviceId: string; msgId: string; receivedAt: number; data: Record<string, unknown> }[] };
  /** What the receiver answered. */
  readonly status: number;
}

export interface WebhookReceiver {
  readonly url: string;
  readonly received: ReceivedDelivery[];
  /** The status every request gets from now on (200 by default). */
  answer(status: number): void;
  /** Resolves at the next request. */
  next(): Promise<ReceivedDelivery>;
}

export interface TestCa {
  /** PEM of the CA that signed the receiver's certificate (for webhooks.caFile). */
  readonly caFile: string;
  readonly cert: string;
  readonly key: string;
}

/** A CA and a certificate for localhost / 127.0.0.1 made by OpenSSL in `dir`. */
export function receiverCertificate(dir: string): TestCa {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-subj',
    '/CN=Receiver Test CA',
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'rx.key', '-out', 'rx.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'rx.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', 'rx.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'rx.pem', '-days', '2', '-extfile', 'rx.ext');
  return { caFile: join(dir, 'ca.pem'), cert: readFileSync(join(dir, 'rx.pem'), 'utf8'), key: readFileSync(join(dir, 'rx.key'), 'utf8') };
}

export async function startReceiver(t: TestContext, tls?: TestCa): Promise<WebhookReceiver> {
  const received: ReceivedDelivery[] = [];
  let status = 200;
  let waiters: ((d: ReceivedDelivery) => void)[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const d: ReceivedDelivery = { at: Date.now(), headers: req.headers, raw, body: JSON.parse(raw) as ReceivedDelivery['body'], status };
      received.push(d);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'receiver is down');
      const ready = waiters;
      waiters = [];
      for (const w of ready) w(d);
    });
  };
  const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handle) : createHttpServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://${tls ? 'localhost' : '127.0.0.1'}:${port}/hook`,
    received,
    answer: (s) => {
      status = s;
    },
    next: () => new Promise((resolve) => waiters.push(resolve)),
  };
}
