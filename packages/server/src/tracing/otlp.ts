import { type Logger, PlatformError } from '@bulwark/core';
import type * as OtelApi from '@opentelemetry/api';
import type * as OtlpHttp from '@opentelemetry/exporter-trace-otlp-http';
import type * as OtelResources from '@opentelemetry/resources';
import type * as OtelSdk from '@opentelemetry/sdk-trace';
import { Counter, type Registry } from 'prom-client';
import type { TraceRecord } from './trace.js';
import type { SpanExporter } from './tracing.js';

/** The OTLP/HTTP traces URL of an endpoint: `http://collector:4318` means `http://collector:4318/v1/traces`. */
export function tracesUrl(endpoint: string): string {
  const trimmed = endpoint.replace(/\/+$/, '');
  return trimmed.endsWith('/v1/traces') ? trimmed : `${trimmed}/v1/traces`;
}

/**
 * Exports message traces over OTLP/HTTP with the OpenTelemetry SDK (trace SDK, batch span
 * processor, OTLP/HTTP exporter), loaded only here, when `tracing.otelEndpoint` is set; a
 * node without an endpoint never loads it. The spans keep the ids the node recorded (the
 * SDK's id generator is handed each one just before the span starts), so the collector's
 * trace and `bulwark telemetry trace` name the same trace and spans.
 */
export async function otlpExporter(endpoint: string, deps: { node: string; version: string; log: Logger; metrics: Registry }): Promise<SpanExporter> {
  let sdk: typeof OtelSdk;
  let api: typeof OtelApi;
  let otlp: typeof OtlpHttp;
  let resources: typeof OtelResources;
  try {
    [sdk, api, otlp, resources] = await Promise.all([import('@opentelemetry/sdk-trace'), import('@opentelemetry/api'), import('@opentelemetry/exporter-trace-otlp-http'), import('@opentelemetry/resources')]);
  } catch (err) {
    throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `tracing.otelEndpoint is set but the OpenTelemetry packages are not installed (they are optional dependencies; install without --omit=optional): ${(err as Error).message}`, { cause: err });
  }
  const failed = new Counter({ name: 'bulwark_trace_export_failures_total', help: 'Batches of spans the OTLP exporter could not deliver to tracing.otelEndpoint', registers: [deps.metrics] });
  const next = { traceId: '', spanId: '' };
  const idGenerator = { generateTraceId: () => next.traceId, generateSpanId: () => next.spanId };
  const url = tracesUrl(endpoint);
  const exporter = new otlp.OTLPTraceExporter({ url, timeoutMillis: 10_000 });
  // Counted and logged once per failing batch; the SDK's own diagnostics stay silent.
  const counted: OtelSdk.SpanExporter = {
    export: (spans, done) =>
      exporter.export(spans, (result) => {
        if (result.code !== 0) {
          failed.inc();
          deps.log.warn({ err: result.error?.message, url, spans: spans.length }, 'could not export spans over OTLP');
        }
        done(result);
      }),
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush(),
  };
  const provider = new sdk.TracerProvider({
    idGenerator,
    resource: resources.resourceFromAttributes({ 'service.name': 'bulwark', 'service.version': deps.version, 'service.instance.id': deps.node }),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter: counted, maxQueueSize: 8_192, scheduledDelayMillis: 1_000 })],
  });
  const tracer = provider.getTracer('bulwark');
  deps.log.info({ url }, 'exporting message traces over OTLP');
  return {
    export(records: readonly TraceRecord[]): void {
      for (const r of records) {
        for (const s of r.spans) {
          next.traceId = r.traceId;
          next.spanId = s.spanId;
          const parent = s.parentSpanId === null ? api.ROOT_CONTEXT : api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: r.traceId, spanId: s.parentSpanId, traceFlags: api.TraceFlags.SAMPLED, isRemote: true });
          const kind = s.name === 'telemetry.message' ? api.SpanKind.SERVER : s.name === 'stream.write' || s.name === 'live.fanout' ? api.SpanKind.CONSUMER : api.SpanKind.INTERNAL;
          const span = tracer.startSpan(s.name, { startTime: s.start, kind, attributes: { 'bulwark.node': s.node, ...s.attributes } }, parent);
          span.end(s.end);
        }
      }
    },
    async shutdown(): Promise<void> {
      await provider.shutdown().catch((err: unknown) => deps.log.warn({ err }, 'the OTLP exporter did not shut down cleanly'));
    },
  };
}
