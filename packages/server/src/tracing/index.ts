export { MessageTrace, epochOf, formatTraceparent, parseTraceparent, preciseNow } from './trace.js';
export type { Span, SpanAttributes, TraceParent, TraceRecord } from './trace.js';
export type { SpanExporter, TraceRepository, TracingSettings } from './tracing.js';
export { Tracer } from './tracer.js';
export { otlpExporter, tracesUrl } from './otlp.js';
export { tracingRoutes } from './routes.js';
