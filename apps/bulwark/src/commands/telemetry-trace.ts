import type { Command } from 'commander';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { type OutputFlags, formatOf, printList, withOutput } from '../formats.js';
import { printTable, time } from '../output.js';

interface SpanView {
  name: string;
  spanId: string;
  parentSpanId: string | null;
  node: string;
  start: number;
  durationMs: number;
  attributes: Record<string, string | number | boolean>;
}
interface TraceView {
  traceId: string;
  deviceId: string;
  msgId: string;
  spans: SpanView[];
}

const ms = (v: number) => v.toFixed(3);

/** `bulwark telemetry trace DEVICE MSGID`: the hops of one traced reading, each with its node, its offset from receipt and its duration. */
export function addTraceCommand(telemetry: Command, env: Env): void {
  withOutput(
    telemetry
      .command('trace')
      .description('the hops of one traced reading (gateway, pipeline steps, commit, fan-out, acknowledgement; stream writer in cluster mode) with their times')
      .argument('<device>', 'device id')
      .argument('<msgId>', "the reading's message id (its envelope id)"),
  ).action(async (id: string, msgId: string, o: OutputFlags) => {
    const format = formatOf(o);
    const { traces } = await openSession(env).call<{ traces: TraceView[] }>('GET', `/api/v1/devices/${encodeURIComponent(id)}/telemetry/${encodeURIComponent(msgId)}/trace`);
    if (format !== 'table') {
      // One row per span for NDJSON and CSV; JSON keeps each trace whole.
      if (format === 'json') printList(format, traces, { head: [], row: () => [], empty: '' });
      else
        printList(
          format,
          traces.flatMap((tr) => tr.spans.map((s) => ({ traceId: tr.traceId, ...s }))),
          { head: [], row: () => [], empty: '' },
        );
      return;
    }
    for (const tr of traces) {
      const root = tr.spans.find((s) => s.name === 'telemetry.message') ?? tr.spans[0];
      const t0 = root?.start ?? 0;
      console.log(`trace ${tr.traceId}  device ${tr.deviceId}  message ${tr.msgId}  received ${time(Math.round(t0))}`);
      printTable(
        ['hop', 'node', 'at (ms)', 'took (ms)', 'details'],
        tr.spans.map((s) => [
          s.name === 'telemetry.message' ? s.name : `  ${s.name}`,
          s.node,
          `+${ms(s.start - t0)}`,
          ms(s.durationMs),
          Object.entries(s.attributes)
            .filter(([k]) => k !== 'bulwark.device_id' && k !== 'bulwark.msg_id')
            .map(([k, v]) => `${k.replace(/^bulwark\./, '')}=${v}`)
            .join(' '),
        ]),
        '',
      );
    }
  });
}
