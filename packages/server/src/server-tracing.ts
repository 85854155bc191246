import type { Clock, Logger } from '@bulwark/core';
import type { Registry } from 'prom-client';
import type { ServerConfig } from './config/index.js';
import type { Store } from './store/index.js';
import { Tracer, otlpExporter } from './tracing/index.js';

/**
 * The node's tracer: spans into the trace store, and over OTLP when tracing.otelEndpoint is
 * set (the OpenTelemetry SDK is loaded only then).
 */
export async function createTracer(config: ServerConfig['tracing'], deps: { node: string; version: string; clock: Clock; log: Logger; metrics: Registry; store: Store }): Promise<Tracer> {
  const exporter = config.otelEndpoint === '' ? undefined : await otlpExporter(config.otelEndpoint, { node: deps.node, version: deps.version, log: deps.log, metrics: deps.metrics });
  return new Tracer(config, { node: deps.node, clock: deps.clock, log: deps.log, metrics: deps.metrics, store: deps.store.traces, ...(exporter ? { exporter } : {}) });
}
