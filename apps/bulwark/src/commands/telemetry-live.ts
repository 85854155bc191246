import type { Command } from 'commander';
import { commaList } from '../args.js';
import { type Query, type Session, openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, usageError } from '../errors.js';
import { type OutputFlags, dataText, formatOf, withOutput } from '../formats.js';
import { time, warn } from '../output.js';

/**
 * `bulwark telemetry live`: follows the server's Server-Sent Events stream of stored readings
 * until Ctrl-C. A stream that breaks (server restart, network) is opened again with backoff;
 * readings stored meanwhile are not shown (`telemetry query` has them).
 */

interface LiveReading {
  deviceId: string;
  msgId: string;
  schemaId: string;
  ts: number;
  receivedAt: number;
  deviceTs: number | null;
  data: Record<string, unknown>;
}
interface LiveFlags extends OutputFlags {
  schema?: string;
  tag?: string;
  devices?: string[];
}

/** Answers worth opening the stream again for: the server is away or restarting. */
const RETRYABLE = new Set(['BULWARK_CLI_UNREACHABLE', 'BULWARK_ERR_STORE_UNAVAILABLE', 'BULWARK_ERR_BUS_UNAVAILABLE', 'BULWARK_ERR_INTERNAL']);
const MAX_BACKOFF_MS = 30_000;

export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** Splits a text/event-stream body into events (comments and `id:` lines are skipped). */
export async function* sseEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true }).replaceAll('\r\n', '\n');
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) yield { event, data: data.join('\n') };
    }
  }
}

function target(device: string | undefined, o: LiveFlags): { path: string; query: Query; what: string } {
  const enc = encodeURIComponent;
  if (device !== undefined && o.tag === undefined && o.devices === undefined) {
    return { path: `/api/v1/devices/${enc(device)}/telemetry/live`, query: { schema: o.schema }, what: `${device}${o.schema ? ` (${o.schema})` : ''}` };
  }
  const ids = [...(o.devices ?? []), ...(device !== undefined ? [device] : [])];
  const parts = [ids.length ? `devices ${ids.join(', ')}` : '', o.tag ? `tag ${o.tag}` : '', o.schema ? `schema ${o.schema}` : ''].filter(Boolean);
  return { path: '/api/v1/telemetry/live', query: { devices: ids.length ? ids.join(',') : undefined, tag: o.tag, schema: o.schema }, what: parts.join(', ') || 'the whole fleet' };
}

/** Reads one opening of the stream to its end; true once it said `ready` (the stream worked). */
async function follow(session: Session, t: ReturnType<typeof target>, print: (r: LiveReading) => void, signal: AbortSignal): Promise<boolean> {
  const res = await session.open(t.path, t.query, signal);
  let ready = false;
  for await (const e of sseEvents(res.body as AsyncIterable<Uint8Array>)) {
    if (e.event === 'ready') {
      ready = true;
      process.stderr.write(`Following the readings of ${t.what} on ${session.url} (Ctrl-C to stop).\n`);
    } else if (e.event === 'reading') print(JSON.parse(e.data) as LiveReading);
    else if (e.event === 'dropped') warn(`${(JSON.parse(e.data) as { dropped: number }).dropped} readings were dropped: this terminal read them more slowly than they arrived`);
  }
  return ready;
}

export function addLiveCommand(telemetry: Command, env: Env): void {
  withOutput(
    telemetry
      .command('live')
      .description('follow readings as they are stored, until Ctrl-C: of one device, some devices, a tag, a schema, or the whole fleet')
      .argument('[device]', 'only this device')
      .option('--devices <ids>', 'only these devices, comma-separated', commaList)
      .option('--tag <tag>', 'only devices with this tag')
      .option('--schema <schema>', 'only readings of this schema (name@version)'),
    ['table', 'json', 'ndjson'],
  ).action(async (device: string | undefined, o: LiveFlags) => {
    const format = formatOf(o);
    if (o.devices?.length === 0) throw usageError('--devices needs at least one device id');
    const t = target(device, o);
    // One JSON object a line for json too: a stream has no end to close an array at.
    const print = format === 'table' ? (r: LiveReading) => console.log(`${time(r.ts)}  ${r.deviceId}  ${r.schemaId}  ${dataText(r.data)}`) : (r: LiveReading) => console.log(JSON.stringify(r));
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    const session = openSession(env);
    let backoff = 1000;
    try {
      while (!stop.signal.aborted) {
        let why: string;
        try {
          if (await follow(session, t, print, stop.signal)) backoff = 1000;
          why = 'the server closed the stream';
        } catch (err) {
          if (stop.signal.aborted) break;
          if (err instanceof CliError && !RETRYABLE.has(err.code)) throw err;
          why = (err as Error).message;
        }
        if (stop.signal.aborted) break;
        process.stderr.write(`${why}; following again in ${backoff / 1000} s (readings stored meanwhile are not shown: see "bulwark telemetry query").\n`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff);
          stop.signal.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              resolve();
            },
            { once: true },
          );
        });
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      }
    } finally {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    }
  });
}
