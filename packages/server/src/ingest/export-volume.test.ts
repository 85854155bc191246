import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { it } from 'node:test';
import type { ExportPageQuery } from './index.js';
import { EXPORT_PAGE_BYTES } from './exporter.js';
import { T0, exportCall, insertReadings, record, startExportServer } from '../testing/telemetry-export.js';

/**
 * An export of N readings (BULWARK_TEST_EXPORT_READINGS; 5,000 in `npm test`, 100,000 in
 * `npm run test:long`) streams in bounded memory. The reader is slower than the server, and
 * each time it has taken another megabyte the test looks at what the server holds for the
 * export in its own memory: the readings the store has handed over (counted) less the bytes
 * the server's socket has passed to the kernel. That must stay within a few pages whatever N
 * is. The readings are sized so that the export is larger than the kernel's socket buffers
 * can ever be (read from /proc): a server that did not wait for its reader would keep the rest.
 */

const N = Number(process.env.BULWARK_TEST_EXPORT_READINGS ?? 5000);
const MB = 1024 * 1024;
/** How long the reader stops after each megabyte: slower than the server, not a time anything is measured against. */
const READER_PAUSE_MS = 50;

/** The most the kernel may buffer on a loopback connection: the send side's and the receive side's maximum. */
function kernelSocketBytes(): number {
  try {
    const max = (name: string) => Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2]);
    const sum = max('tcp_wmem') + max('tcp_rmem');
    return Number.isFinite(sum) ? sum : 64 * MB;
  } catch {
    return 64 * MB;
  }
}

it(`streams an export of ${N} readings in bounded memory, however slowly it is read`, { timeout: 600_000 }, async (t) => {
  assert.ok(Number.isSafeInteger(N) && N >= 1000, 'BULWARK_TEST_EXPORT_READINGS must be a whole number of at least 1000');
  const x = await startExportServer(t);
  const kernel = kernelSocketBytes();
  const total = kernel + 24 * MB;
  const pad = 'x'.repeat(Math.max(64, Math.floor(total / N) - 330));
  await insertReadings(x.s, N, (i) => record(`m-${i % 3}`, `r${i}`, T0 + i, 'meter@1', { kwh: i, site: pad }), Math.max(200, Math.floor((8 * MB) / pad.length)));

  // The store reads, counted; and the response object, to see what Node holds for it.
  const source = x.s.server.store.telemetryExport;
  const read = source.exportPage.bind(source);
  let fetched = 0;
  source.exportPage = async (q: ExportPageQuery) => {
    const page = await read(q);
    fetched += page.length;
    return page;
  };
  let socket: Socket | undefined;
  x.s.server.app.server.on('request', (req: IncomingMessage) => {
    if (req.url?.startsWith('/api/v1/telemetry/export')) socket = req.socket;
  });

  const res = await fetch(`${x.s.url}/api/v1/telemetry/export?${new URLSearchParams({ schema: 'meter@1', since: String(T0), until: String(T0 + N) })}`, {
    headers: { authorization: `Bearer ${x.admin}` },
  });
  assert.equal(res.status, 200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let lines = 0;
  let bytes = 0;
  let nextLook = 0;
  let lastLine = '';
  let worst = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.length;
    const text = Buffer.from(value).toString('utf8');
    lines += text.split('\n').length - 1;
    lastLine = (lastLine + text).slice(-2 * pad.length - 4000);
    if (bytes >= nextLook) {
      nextLook += MB;
      const toKernel = socket ? socket.bytesWritten - socket.writableLength : 0;
      worst = Math.max(worst, fetched * (bytes / Math.max(lines, 1)) - toKernel);
      // The slow part of the reader: a pause per megabyte, in which the server may run on as far as it will.
      await new Promise((resolve) => setTimeout(resolve, READER_PAUSE_MS));
    }
  }
  assert.equal(lines, N, 'every reading arrived');
  assert.ok(bytes > kernel + 8 * MB, `the export (${bytes} bytes) is larger than the kernel could buffer (${kernel})`);
  const tail = JSON.parse(lastLine.trimEnd().split('\n').pop() ?? '{}') as { msgId?: string };
  let lastOfLastDevice = N - 1;
  while (lastOfLastDevice % 3 !== 2) lastOfLastDevice -= 1;
  assert.equal(tail.msgId, `r${lastOfLastDevice}`, 'the last reading of the last device (m-2) comes last');
  const fewPages = 4 * EXPORT_PAGE_BYTES + MB;
  t.diagnostic(`export of ${N} readings, ${(bytes / MB).toFixed(1)} MB: the server held at most ${(worst / MB).toFixed(2)} MB of it (bound ${(fewPages / MB).toFixed(1)} MB)`);
  assert.ok(worst <= fewPages, `the server held ${worst} bytes of the export at once (bound ${fewPages})`);
  assert.equal((await exportCall(x, { schema: 'meter@1', since: String(T0), until: String(T0 + 1) })).text.split('\n').length, 2, 'the server still answers');
});
