import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { IdParams, bearer, errorResponses } from '../http/index.js';
import type { HealthService } from './service.js';

const Record_ = Type.Object({ deviceId: Type.String(), receivedAt: Type.Integer(), report: Type.Unknown({ description: 'the HealthReport as the device sent it' }) });
const Finding = Type.Object({
  kind: Type.String({ description: 'debug-port, boot-unverified, boot-unchecked, ssh-password, ssh-root-login or serial-console' }),
  severity: Type.Union([Type.Literal('fail'), Type.Literal('warn')]),
  detail: Type.String(),
});
const Posture = Type.Object({
  deviceId: Type.String(),
  reportedAt: Type.Integer({ description: 'when the report carrying it was received' }),
  posture: Type.Unknown({ description: 'the posture as the device reported it (device contract: HealthReport.posture)' }),
  findings: Type.Immutable(Type.Array(Finding)),
});
const Event = Type.Object({
  deviceId: Type.String(),
  id: Type.String(),
  type: Type.String(),
  ts: Type.Number(),
  receivedAt: Type.Integer(),
  data: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
});

/** Device health reports and device events. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ health: HealthService }> = async (app, { health }) => {
  app.get(
    '/api/v1/devices/:id/health',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'device' },
      schema: {
        tags: ['health'],
        security: bearer,
        params: IdParams,
        summary: "The device's latest health report, whether it reports a restart loop, its recent reports (newest first), and the newest posture it reported with its findings",
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 20 }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({ deviceId: Type.String(), latest: Type.Union([Record_, Type.Null()]), restartLoop: Type.Boolean(), history: Type.Array(Record_), posture: Type.Union([Posture, Type.Null()]) }),
          ...errorResponses,
        },
      },
    },
    async (request) => health.view(request.params.id, request.query.limit),
  );

  app.get(
    '/api/v1/devices/:id/events',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'device' },
      schema: {
        tags: ['health'],
        security: bearer,
        params: IdParams,
        summary: 'Events the device sent (boot, crash, state changes), newest first',
        querystring: Type.Object(
          {
            type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            since: Type.Optional(Type.Integer({ minimum: 0, description: 'received at or after (ms since the epoch)' })),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(Event), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      return health.listEvents({ deviceId: request.params.id, limit: q.limit, ...(q.type ? { type: q.type } : {}), ...(q.since !== undefined ? { sinceMs: q.since } : {}) });
    },
  );
};
