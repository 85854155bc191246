import type { Counter } from 'prom-client';
import type { SseWriter } from '../http/index.js';
import type { TelemetryRecord } from './ingest.js';

/** What a live reading looks like on the wire, for every live transport. */
export function liveReading(r: TelemetryRecord): string {
  return JSON.stringify({ deviceId: r.deviceId, msgId: r.msgId, schemaId: r.schemaId, ts: r.ts, receivedAt: r.receivedAt, deviceTs: r.deviceTs, data: r.data });
}

/** Writes a stored reading to a Server-Sent Events stream (bounded; see SseWriter). */
export function sseSink(writer: SseWriter): (r: TelemetryRecord) => void {
  return (r) => writer.sendJson('reading', liveReading(r), `${r.deviceId}/${r.msgId}`);
}

/** The WebSocket side of a live subscription: past `maxBufferedBytes` waiting to be sent, readings are dropped and counted. */
export function webSocketSink(socket: { readyState: number; bufferedAmount: number; send(data: string): void }, maxBufferedBytes: number, dropped: Counter): (r: TelemetryRecord) => void {
  return (r) => {
    if (socket.readyState !== 1) return;
    if (socket.bufferedAmount > maxBufferedBytes) {
      dropped.inc();
      return;
    }
    socket.send(liveReading(r));
  };
}
