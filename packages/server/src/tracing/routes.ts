import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { PlatformError } from '@bulwark/core';
import { ENVELOPE_LIMITS } from '@bulwark/protocol';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/index.js';
import type { Span, TraceRecord, TraceRepository, Tracer } from './index.js';

const SpanView = Type.Object({
  name: Type.String({ description: 'The hop: telemetry.message (receipt to acknowledgement, the root), gateway.receive, pipeline.<step>, ingest.commit, live.fanout or alerts.feed, gateway.ack, stream.write, live.fanout on another node' }),
  spanId: Type.String(),
  parentSpanId: Type.Union([Type.String(), Type.Null()], { description: "The root span for a hop; for the root, the device's span when it sent a traceparent" }),
  node: Type.String({ description: 'The node that ran the hop' }),
  start: Type.Number({ description: 'Epoch milliseconds (fractional)' }),
  durationMs: Type.Number(),
  attributes: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
});
const TraceView = Type.Object({
  traceId: Type.String(),
  deviceId: Type.String(),
  msgId: Type.String(),
  spans: Type.Array(SpanView, { description: "Every node's spans of the message, by start time" }),
});

/** Each trace id of a message (one, unless the device sent the reading again under a new trace) with its spans in time order. */
export function traceViews(records: readonly TraceRecord[], deviceId: string, msgId: string) {
  const byTrace = new Map<string, Span[]>();
  for (const r of records) byTrace.set(r.traceId, [...(byTrace.get(r.traceId) ?? []), ...r.spans]);
  return [...byTrace].map(([traceId, spans]) => ({
    traceId,
    deviceId,
    msgId,
    spans: spans
      .sort((a, b) => a.start - b.start || (a.parentSpanId === null ? -1 : 1))
      .map((s) => ({ name: s.name, spanId: s.spanId, parentSpanId: s.parentSpanId, node: s.node, start: s.start, durationMs: Math.round((s.end - s.start) * 1000) / 1000, attributes: s.attributes ?? {} })),
  }));
}

/** The stored hops of one traced message. */
export const tracingRoutes: FastifyPluginAsyncTypebox<{ traces: TraceRepository; tracer: Tracer }> = async (app, { traces, tracer }) => {
  app.get(
    '/api/v1/devices/:id/telemetry/:msgId/trace',
    {
      config: { auth: { scope: 'telemetry:read' }, groupLimit: 'device' },
      schema: {
        tags: ['telemetry'],
        summary: 'The hops of one traced reading (tracing.sampleEvery, or a device-sent traceparent) with their nodes and times; 404 when it was not traced or its trace is past tracing.retentionHours',
        security: bearer,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' }), msgId: Type.String({ minLength: 1, maxLength: ENVELOPE_LIMITS.idMaxLength }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ traces: Type.Array(TraceView) }), ...errorResponses },
      },
    },
    async (request) => {
      const { id, msgId } = request.params;
      // What this node still holds is written first, so a trace just recorded here is found.
      await tracer.flush();
      const records = await traces.forMessage(id, msgId);
      if (records.length === 0) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no trace of message ${msgId} of device ${id}: it was not traced (tracing.sampleEvery), or its trace is older than tracing.retentionHours`);
      return { traces: traceViews(records, id, msgId) };
    },
  );
};
