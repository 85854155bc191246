import type { GroupSelector } from '../registry/index.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import { PlatformError } from '@bulwark/core';
import { hasScope } from '../access/index.js';
import { bearer, errorResponses } from '../http/index.js';
import { CONTENT_TYPES, type ExportFormat } from './export-format.js';
import type { ExportPlan, TelemetryExporter } from './exporter.js';

const ExportQuery = Type.Object(
  {
    device: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$', description: 'one device id' })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:=-]+$', description: 'the devices that carry this tag now' })),
    schema: Type.Optional(Type.String({ maxLength: 80, pattern: '^[a-z0-9][a-z0-9._-]{0,63}(@[1-9][0-9]{0,5})?$', description: '`name@version`, or a name for all its versions' })),
    since: Type.Optional(Type.String({ maxLength: 40, description: 'required: start of the range (normalised time, inclusive), ISO 8601 with a zone or epoch ms' })),
    until: Type.Optional(Type.String({ maxLength: 40, description: 'required: end of the range (exclusive), ISO 8601 with a zone or epoch ms' })),
    format: Type.Optional(Type.Enum(['ndjson', 'csv'], { description: 'default: csv when Accept names text/csv, else ndjson' })),
    cursor: Type.Optional(Type.String({ maxLength: 2048, description: 'resume right after the reading that carried this cursor (same filter, since and until)' })),
    decrypt: Type.Optional(Type.Boolean({ description: 'Show fields stored encrypted (x-sensitive: encrypt) in clear; needs telemetry:decrypt' })),
  },
  { additionalProperties: false },
);

export interface ExportRouteDeps {
  readonly exporter: TelemetryExporter;
  /** How the devices of device groups are selected (for a caller limited to groups). */
  readonly groups: { selectors(ids: readonly string[]): Promise<GroupSelector[]> };
}

/** GET /api/v1/telemetry/export: stored readings as a resumable NDJSON or CSV download. */
export const exportRoutes: FastifyPluginAsyncTypebox<ExportRouteDeps> = async (app, { exporter, groups }) => {
  app.get(
    '/api/v1/telemetry/export',
    {
      config: { auth: { scope: 'telemetry:read' }, groupLimit: 'filtered' },
      schema: {
        tags: ['telemetry'],
        security: bearer,
        querystring: ExportQuery,
        summary:
          'Stored readings of one device, tag or schema over a time range, streamed as NDJSON or CSV in device, time, message id order; ' +
          'each line carries a cursor that resumes after it; encrypted fields masked unless decrypt=true; audited (telemetry.export)',
        response: { 200: Type.String({ description: 'NDJSON lines or CSV rows, each ending with its resume cursor' }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { format, decrypt, ...params } = request.query;
      const chosen: ExportFormat = format ?? (/\btext\/csv\b/.test(request.headers.accept ?? '') ? 'csv' : 'ndjson');
      const limit = request.auth?.principal.deviceGroups ?? null;
      const plan = await exporter.plan(params, chosen, decrypt === true, limit === null ? undefined : await groups.selectors(limit));
      if (plan.reveal && !hasScope(request.auth?.scopes ?? [], 'telemetry:decrypt')) {
        throw new PlatformError('BULWARK_ERR_FORBIDDEN', 'decrypting needs the telemetry:decrypt scope', { details: { requiredScope: 'telemetry:decrypt' } });
      }
      audit(request, plan);
      void reply.header('content-type', CONTENT_TYPES[plan.format]).header('content-disposition', `attachment; filename="telemetry-${plan.request.filter.kind}.${plan.format}"`).header('cache-control', 'no-store');
      return reply.send(exporter.stream(plan, request.log) as never);
    },
  );
};

/** The export goes into the audit log when the download starts, with what it selects. */
function audit(request: FastifyRequest, plan: ExportPlan): void {
  const { filter, sinceMs, untilMs, resume } = plan.request;
  request.auditRead = 'telemetry.export';
  request.auditTarget = `${filter.kind}:${filter.value}`;
  request.auditDetails = {
    [filter.kind]: filter.value,
    since: sinceMs,
    until: untilMs,
    format: plan.format,
    decrypt: plan.reveal,
    asOf: plan.asOfMs,
    resumed: resume !== undefined,
  };
}
