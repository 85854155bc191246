import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ENVELOPE_LIMITS } from '@bulwark/protocol';
import Type from 'typebox';
import { IdParams, Nullable, bearer, errorResponses } from '../http/index.js';
import type { TwinService } from './service.js';

const Config = Type.Record(Type.String(), Type.Unknown());

export const TwinSchema = Type.Object({
  deviceId: Type.String(),
  desired: Type.Union([Type.Object({ version: Type.Integer(), config: Config, updatedAt: Type.Integer(), updatedBy: Type.String() }), Type.Null()]),
  reported: Type.Union([
    Type.Object({
      version: Type.Integer(),
      status: Type.String(),
      config: Config,
      reason: Nullable(Type.String()),
      detail: Nullable(Type.String()),
      deviceTs: Nullable(Type.Integer()),
      receivedAt: Type.Integer(),
    }),
    Type.Null(),
  ]),
  inSync: Type.Boolean(),
  driftSince: Nullable(Type.Integer()),
  drifted: Type.Boolean(),
});

/** Desired and reported configuration per device, and the fleet's drift. */
export const twinRoutes: FastifyPluginAsyncTypebox<{ twin: TwinService }> = async (app, { twin }) => {
  app.get(
    '/api/v1/devices/:id/twin',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'device' },
      schema: {
        tags: ['twin'],
        security: bearer,
        params: IdParams,
        response: { 200: TwinSchema, ...errorResponses },
        summary: 'Desired and reported configuration of a device; drifted when they disagree for longer than twin.driftThresholdMs',
      },
    },
    async (request) => twin.get(request.params.id),
  );

  app.put(
    '/api/v1/devices/:id/twin/desired',
    {
      // The body nests as deep as the message devices get ({version, config, ts}): refused at parse time past their limit.
      config: { auth: { scope: 'twin:write' }, groupLimit: 'device', audit: 'twin.desired.set', jsonMaxDepth: ENVELOPE_LIMITS.maxDepth },
      schema: {
        tags: ['twin'],
        security: bearer,
        params: IdParams,
        response: { 200: TwinSchema, ...errorResponses },
        summary: 'Set the desired configuration (next version); sent to the device now if connected, else when it next subscribes. ifVersion: only over that version, else 409',
        body: Type.Object({ config: Config, ifVersion: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false }),
      },
    },
    async (request) => {
      const { id } = request.params;
      request.auditTarget = id;
      const view = await twin.setDesired(id, request.body.config, request.auth?.principal.id ?? 'unknown', request.body.ifVersion);
      request.auditDetails = { version: view.desired?.version };
      return view;
    },
  );

  app.get(
    '/api/v1/twin/drift',
    {
      config: { auth: { scope: 'devices:read' } },
      schema: {
        tags: ['twin'],
        security: bearer,
        summary: 'Devices whose reported configuration has disagreed with the desired one for longer than twin.driftThresholdMs, longest first',
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false }),
        response: { 200: Type.Array(TwinSchema), ...errorResponses },
      },
    },
    async (request) => twin.drifted(request.query.limit),
  );
};
