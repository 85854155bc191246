import type { Readable } from 'node:stream';
import { isPlatformError } from '@bulwark/core';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import { IdParams, Nullable, bearer, errorResponses } from '../http/index.js';
import { GROUP_ID_PATTERN } from '../registry/index.js';
import type { FirmwareService } from './firmware-service.js';
import type { RolloutService } from './rollout-service.js';

export const ArtifactSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  version: Type.String(),
  securityVersion: Type.Integer(),
  model: Type.String(),
  hardwareRevisions: Type.Array(Type.String()),
  size: Type.Integer(),
  sha256: Type.String(),
  expiresAt: Type.Integer(),
  state: Type.String(),
  uploadedBy: Type.String(),
  createdAt: Type.Integer(),
  publishedAt: Nullable(Type.Integer()),
});

const Progress = { total: Type.Integer(), committed: Type.Integer(), failed: Type.Integer(), inProgress: Type.Integer(), pending: Type.Integer() };
const Wave = Type.Union([Type.Object({ percent: Type.Number({ exclusiveMinimum: 0, maximum: 100 }) }, { additionalProperties: false }), Type.Object({ count: Type.Integer({ minimum: 1 }) }, { additionalProperties: false })]);
const DeviceIdText = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' });
const Target = Type.Object(
  {
    deviceIds: Type.Optional(Type.Array(DeviceIdText, { minItems: 1, maxItems: 10_000 })),
    group: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: GROUP_ID_PATTERN, description: 'the devices of this group when the rollout is created' })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    firmwareVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
const Strategy = Type.Object({ canary: Type.Optional(Type.Array(DeviceIdText, { maxItems: 1000 })), waves: Type.Array(Wave, { maxItems: 50 }) }, { additionalProperties: false });
const Gates = Type.Object(
  {
    minDevices: Type.Integer({ minimum: 1 }),
    maxFailures: Type.Optional(Type.Integer({ minimum: 0 })),
    maxFailurePercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    minSuccessPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    maxRestartLoopExcessPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    maxCrashRatio: Type.Optional(Type.Number({ minimum: 1 })),
    maxReconnectRatio: Type.Optional(Type.Number({ minimum: 1 })),
    maxSilentExcessPercent: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description:
          'Share of updated devices gone silent (nothing heard for silentAfterMs after their commit: no health report, connect or disconnect), in percentage points above the devices not updated that were heard since the wave began; with it a finished wave waits silentAfterMs after its last commit before the next starts',
      }),
    ),
    maxTelemetryGapExcessPercent: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description:
          'Share of updated devices that sent telemetry in the silentAfterMs before their commit and none in the last silentAfterMs, in percentage points above the devices not updated that sent telemetry before the wave began and none since; holds a finished wave like maxSilentExcessPercent',
      }),
    ),
    silentAfterMs: Type.Optional(Type.Integer({ minimum: 60_000, maximum: 7 * 86_400_000, description: 'How long a device may say nothing before it counts as silent (default 600000); keep it several health report intervals long' })),
    onFailure: Type.Union([Type.Literal('pause'), Type.Literal('abort')]),
  },
  { additionalProperties: false },
);
const Window = Type.Object({ startMinute: Type.Integer({ minimum: 0, maximum: 1439 }), endMinute: Type.Integer({ minimum: 0, maximum: 1439 }) }, { additionalProperties: false });

export const RolloutSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  artifactId: Type.String(),
  artifact: Type.Object({ id: Type.String(), name: Type.String(), version: Type.String() }),
  target: Target,
  strategy: Strategy,
  gates: Gates,
  window: Type.Union([Window, Type.Null()]),
  maxRetries: Type.Integer(),
  state: Type.String(),
  reason: Nullable(Type.String()),
  currentWave: Type.Integer(),
  waveCount: Type.Integer(),
  waves: Type.Array(Type.Object({ wave: Type.Integer(), ...Progress })),
  totals: Type.Object(Progress),
  history: Type.Array(Type.Object({ at: Type.Integer(), wave: Type.Integer(), state: Type.String(), actor: Type.String(), reason: Type.String() })),
  createdBy: Type.String(),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
});

const RolloutDeviceSchema = Type.Object({
  deviceId: Type.String(),
  wave: Type.Integer(),
  state: Type.String(),
  jobId: Nullable(Type.String()),
  attempts: Type.Integer(),
  fromVersion: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  notifiedAt: Nullable(Type.Integer()),
  updatedAt: Type.Integer(),
});

/** A refusal names its reason in the audit entry as well as in the answer. */
async function audited<T>(request: FastifyRequest, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isPlatformError(err) && err.details?.reason !== undefined) request.auditDetails = { ...request.auditDetails, reason: err.details.reason };
    throw err;
  }
}

/** Firmware upload (metadata, then image) and rollouts. */
export const otaRoutes: FastifyPluginAsyncTypebox<{ firmware: FirmwareService; rollouts: RolloutService }> = async (app, { firmware, rollouts }) => {
  // The image is streamed to disk and cut off at its declared size, never buffered whole.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  const by = (r: FastifyRequest) => r.auth?.principal.id ?? 'unknown';

  app.post(
    '/api/v1/firmware',
    {
      config: { auth: { scope: 'firmware:write' }, audit: 'firmware.upload' },
      schema: {
        tags: ['firmware'],
        security: bearer,
        body: Type.Object({ manifest: Type.Unknown() }, { additionalProperties: false }),
        response: { 201: ArtifactSchema, ...errorResponses },
        summary: 'Step 1 of an upload: the signed manifest. Verified against the root key set (threshold), the clock and ota.minSecurityVersion; refusals are audited with their reason',
      },
    },
    async (request, reply) =>
      audited(request, async () => {
        const a = await firmware.register(request.body.manifest, by(request));
        request.auditTarget = a.id;
        request.auditDetails = { name: a.name, version: a.version, securityVersion: a.securityVersion };
        return reply.code(201).send(a);
      }),
  );

  app.put(
    '/api/v1/firmware/:id/image',
    {
      config: { auth: { scope: 'firmware:write' }, audit: 'firmware.publish' },
      schema: {
        tags: ['firmware'],
        security: bearer,
        params: IdParams,
        response: { 200: ArtifactSchema, ...errorResponses },
        summary:
          'Step 2: the image as application/octet-stream; published only when it has exactly the signed size and SHA-256 (read no further than the declared size). A refused image drops the registration, so the same upload can be made again with the right image',
      },
    },
    async (request, reply) =>
      audited(request, async () => {
        request.auditTarget = request.params.id;
        try {
          return await firmware.receiveImage(request.params.id, request.body as Readable);
        } catch (err) {
          // The rest of a refused body is not read: close the connection after the answer.
          void reply.header('connection', 'close');
          throw err;
        }
      }),
  );

  app.get(
    '/api/v1/firmware',
    {
      config: { auth: { scope: 'firmware:read' }, groupLimit: 'none' },
      schema: {
        tags: ['firmware'],
        security: bearer,
        summary: 'Firmware artifacts, newest first',
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false }),
        response: { 200: Type.Array(ArtifactSchema), ...errorResponses },
      },
    },
    async (request) => firmware.list(request.query.limit),
  );

  app.get(
    '/api/v1/firmware/:id',
    {
      config: { auth: { scope: 'firmware:read' }, groupLimit: 'none' },
      schema: { tags: ['firmware'], security: bearer, params: IdParams, summary: 'One firmware artifact', response: { 200: Type.Intersect([ArtifactSchema, Type.Object({ manifest: Type.Unknown() })]), ...errorResponses } },
    },
    async (request) => firmware.get(request.params.id),
  );

  app.post(
    '/api/v1/rollouts',
    {
      config: { auth: { scope: 'rollouts:write' }, audit: 'rollout.create' },
      schema: {
        tags: ['rollouts'],
        security: bearer,
        response: { 201: RolloutSchema, ...errorResponses },
        summary:
          'Start a staged rollout: target (devices, or tag / model / current firmware version together; only compatible devices not yet on the version), waves or a canary set, gates (failures, success, and updated devices against the rest: restart loops, crashes, reconnects, devices gone silent, telemetry stopped), maintenance window, retries',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 128 }),
            artifactId: Type.String({ minLength: 1, maxLength: 64 }),
            target: Target,
            strategy: Strategy,
            gates: Gates,
            window: Type.Optional(Window),
            maxRetries: Type.Optional(Type.Integer({ minimum: 0, maximum: 20 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) =>
      audited(request, async () => {
        const view = await rollouts.create(request.body, by(request));
        request.auditTarget = view.id;
        request.auditDetails = { artifactId: view.artifactId, devices: view.totals.total, waves: view.waveCount };
        return reply.code(201).send(view);
      }),
  );

  app.get(
    '/api/v1/rollouts',
    {
      config: { auth: { scope: 'rollouts:read' } },
      schema: {
        tags: ['rollouts'],
        security: bearer,
        summary: 'Rollouts with their progress, newest first',
        querystring: Type.Object({ state: Type.Optional(Type.Union(['running', 'paused', 'aborted', 'completed'].map((s) => Type.Literal(s)))), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false }),
        response: { 200: Type.Array(RolloutSchema), ...errorResponses },
      },
    },
    async (request) => rollouts.list(request.query.limit, request.query.state as 'running' | undefined),
  );

  app.get(
    '/api/v1/rollouts/:id',
    {
      config: { auth: { scope: 'rollouts:read' } },
      schema: { tags: ['rollouts'], security: bearer, params: IdParams, summary: 'A rollout: state, the reason for every pause, progress per wave', response: { 200: RolloutSchema, ...errorResponses } },
    },
    async (request) => rollouts.view(request.params.id),
  );

  app.get(
    '/api/v1/rollouts/:id/devices',
    {
      config: { auth: { scope: 'rollouts:read' } },
      schema: {
        tags: ['rollouts'],
        security: bearer,
        params: IdParams,
        summary: 'The devices of a rollout with their wave and update state',
        querystring: Type.Object({ wave: Type.Optional(Type.Integer({ minimum: 0 })), state: Type.Optional(Type.String({ maxLength: 32 })), limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }) }, { additionalProperties: false }),
        response: { 200: Type.Array(RolloutDeviceSchema), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      return rollouts.devices(request.params.id, { limit: q.limit, ...(q.wave !== undefined ? { wave: q.wave } : {}), ...(q.state ? { states: [q.state as 'pending'] } : {}) });
    },
  );

  for (const action of ['pause', 'resume', 'abort'] as const) {
    app.post(
      `/api/v1/rollouts/:id/${action}`,
      {
        config: { auth: { scope: 'rollouts:write' }, audit: `rollout.${action}` },
        schema: {
          tags: ['rollouts'],
          security: bearer,
          params: IdParams,
          response: { 200: RolloutSchema, ...errorResponses },
          summary: { pause: 'Pause: no device is notified until resumed; devices already updating finish', resume: 'Resume a paused rollout (the gate that paused this wave is not judged again)', abort: 'Abort for good: no further device is ever notified' }[
            action
          ],
          body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false }),
        },
      },
      async (request) => {
        request.auditTarget = request.params.id;
        request.auditDetails = { reason: request.body.reason };
        return rollouts.control(request.params.id, action, request.body.reason, by(request));
      },
    );
  }
};
