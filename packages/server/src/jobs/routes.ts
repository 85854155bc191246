import { PlatformError } from '@bulwark/core';
import { ENVELOPE_LIMITS } from '@bulwark/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import { type Scope, hasScope } from '../access/index.js';
import { IdParams, Nullable, bearer, errorResponses } from '../http/index.js';
import { GROUP_ID_PATTERN } from '../registry/index.js';
import type { JobService } from './job-service.js';
import { JOB_DEVICE_STATES, JOB_STATES, type JobDeviceState, type JobOperation, type JobState, type OperationType } from './jobs.js';

const tags = ['jobs'];
const Params = Type.Record(Type.String(), Type.Unknown());

export const OperationSchema = Type.Union([
  Type.Object(
    { type: Type.Literal('twin-patch'), patch: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Unknown(), { description: "merged over each device's desired configuration; a null value removes the key" }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('command'),
      name: Type.String({ minLength: 1, maxLength: 64 }),
      params: Type.Optional(Params),
      ttlS: Type.Optional(Type.Integer({ minimum: 1, description: 'how long each command waits for its device (commands.maxTtlS at most)' })),
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('rotate-certificate') }, { additionalProperties: false, description: 'asks each agent to renew its certificate now (built-in command certs.renew)' }),
  Type.Object({ type: Type.Literal('suspend') }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('resume') }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('decommission') }, { additionalProperties: false, description: "revokes each device's certificates and retires it" }),
]);

const Window = Type.Object({ startMinute: Type.Integer({ minimum: 0, maximum: 1439 }), endMinute: Type.Integer({ minimum: 0, maximum: 1439 }) }, { additionalProperties: false, description: 'daily, in UTC minutes; may wrap past midnight' });
const Pacing = Type.Object({
  ratePerSecond: Type.Number({ exclusiveMinimum: 0, description: 'devices dispatched a second, at most (jobs.maxRatePerSecond at most)' }),
  maxConcurrent: Type.Integer({ minimum: 1, maximum: 100_000, description: 'devices dispatched and not answered yet, at most' }),
  window: Type.Union([Window, Type.Null()]),
});
const Abort = Type.Object(
  {
    failedPercent: Type.Number({ minimum: 0, maximum: 100, description: 'stop when this share of finished devices failed or timed out' }),
    minFinished: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'once at least this many finished' }),
  },
  { additionalProperties: false },
);
const Counts = Type.Object(Object.fromEntries(JOB_DEVICE_STATES.map((s) => [s, Type.Integer()])));

export const JobSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  operation: OperationSchema,
  group: Type.String(),
  pacing: Pacing,
  deviceTimeoutMs: Type.Integer(),
  maxRetries: Type.Integer(),
  abort: Type.Union([Abort, Type.Null()]),
  state: Type.String(),
  reason: Nullable(Type.String()),
  deviceCount: Type.Integer(),
  skipped: Type.Record(Type.String(), Type.Integer()),
  history: Type.Array(Type.Object({ at: Type.Integer(), state: Type.String(), actor: Type.String(), reason: Type.String() })),
  createdBy: Type.String(),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
  settledAt: Nullable(Type.Integer()),
  counts: Counts,
  progress: Type.Object({ finished: Type.Integer(), total: Type.Integer(), percent: Type.Number() }),
  reasons: Type.Array(Type.Object({ state: Type.String(), reason: Type.String(), count: Type.Integer() })),
});

const JobDeviceSchema = Type.Object({
  jobId: Type.String(),
  deviceId: Type.String(),
  state: Type.String(),
  attempts: Type.Integer(),
  ref: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  detail: Nullable(Type.String()),
  dispatchedAt: Nullable(Type.Integer()),
  finishedAt: Nullable(Type.Integer()),
  updatedAt: Type.Integer(),
});

/** Beside jobs:write, a job needs the scope of what it does to each device. */
export const OPERATION_SCOPES: Readonly<Record<OperationType, Scope>> = {
  'twin-patch': 'twin:write',
  command: 'devices:command',
  'rotate-certificate': 'devices:command',
  suspend: 'devices:write',
  resume: 'devices:write',
  decommission: 'devices:write',
};

const by = (r: FastifyRequest) => r.auth?.principal.id ?? 'unknown';
/** The device groups a caller is limited to (null: the whole fleet): it sees and makes jobs over those groups only. */
const limitOf = (r: FastifyRequest) => r.auth?.principal.deviceGroups ?? null;
const states = <T extends string>(all: readonly T[], text: string | undefined): T[] | undefined => {
  if (text === undefined) return undefined;
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((s) => !(all as readonly string[]).includes(s));
  if (bad.length > 0) throw new PlatformError('BULWARK_ERR_VALIDATION', `unknown state ${bad.join(', ')} (use ${all.join(', ')})`);
  return list as T[];
};

/** Jobs over device groups: create, watch, page through devices, cancel / pause / resume. */
export const jobRoutes: FastifyPluginAsyncTypebox<{ jobs: JobService }> = async (app, { jobs }) => {
  app.post(
    '/api/v1/jobs',
    {
      config: { auth: { scope: 'jobs:write' }, groupLimit: 'filtered', audit: 'job.create', jsonMaxDepth: ENVELOPE_LIMITS.maxDepth },
      schema: {
        tags,
        security: bearer,
        response: { 201: JobSchema, ...errorResponses },
        summary:
          "Start a job: one operation (twin patch, command, certificate renewal, suspend, resume, decommission) over the members of a group when the job is made, paced (rate, concurrency, window), with per-device status, retries after a timeout and an abort rule. Needs the operation's own scope too",
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 128 }),
            group: Type.String({ minLength: 1, maxLength: 64, pattern: GROUP_ID_PATTERN }),
            operation: OperationSchema,
            pacing: Type.Optional(Type.Partial(Pacing, { additionalProperties: false })),
            deviceTimeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 86_400_000, description: 'a dispatched device that has not answered within this times out (default jobs.defaultDeviceTimeoutMs)' })),
            maxRetries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, description: 'dispatch again after a timeout, this many times (default 0)' })),
            abort: Type.Optional(Abort),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const b = request.body;
      const op = b.operation as JobOperation;
      const needed = OPERATION_SCOPES[op.type];
      if (!hasScope(request.auth?.scopes ?? [], needed)) throw new PlatformError('BULWARK_ERR_FORBIDDEN', `a ${op.type} job needs the ${needed} scope too`, { details: { requiredScope: needed } });
      const limit = limitOf(request);
      if (limit !== null && !limit.includes(b.group)) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no group ${b.group}`);
      const operation: JobOperation = op.type === 'command' ? { ...op, params: op.params ?? {} } : op;
      const view = await jobs.create(
        {
          name: b.name,
          group: b.group,
          operation,
          ...(b.pacing ? { pacing: b.pacing } : {}),
          ...(b.deviceTimeoutMs !== undefined ? { deviceTimeoutMs: b.deviceTimeoutMs } : {}),
          ...(b.maxRetries !== undefined ? { maxRetries: b.maxRetries } : {}),
          ...(b.abort ? { abort: b.abort } : {}),
        },
        by(request),
      );
      request.auditTarget = view.id;
      request.auditDetails = { operation: op.type, group: view.group, devices: view.deviceCount };
      return reply.code(201).send(view);
    },
  );

  app.get(
    '/api/v1/jobs',
    {
      config: { auth: { scope: 'jobs:read' }, groupLimit: 'filtered' },
      schema: {
        tags,
        security: bearer,
        summary: 'Jobs with their progress, newest first; page with before=<last id>',
        querystring: Type.Object(
          {
            state: Type.Optional(Type.String({ maxLength: 100, description: `comma-separated: ${JOB_STATES.join(', ')}` })),
            before: Type.Optional(Type.String({ maxLength: 64 })),
            limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(JobSchema), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const s = states<JobState>(JOB_STATES, q.state);
      const limit = limitOf(request);
      return jobs.list({ limit: q.limit, ...(s ? { states: s } : {}), ...(q.before !== undefined ? { before: q.before } : {}), ...(limit !== null ? { groups: limit } : {}) });
    },
  );

  app.get(
    '/api/v1/jobs/:id',
    {
      config: { auth: { scope: 'jobs:read' }, groupLimit: 'filtered' },
      schema: { tags, security: bearer, params: IdParams, summary: 'A job: state, progress, counts per device state and the reasons of failures', response: { 200: JobSchema, ...errorResponses } },
    },
    async (request) => jobs.view(request.params.id, limitOf(request)),
  );

  app.get(
    '/api/v1/jobs/:id/devices',
    {
      config: { auth: { scope: 'jobs:read' }, groupLimit: 'filtered' },
      schema: {
        tags,
        security: bearer,
        params: IdParams,
        summary: 'The devices of a job with their state, attempts and reason; page with after=<last device id>',
        querystring: Type.Object(
          {
            state: Type.Optional(Type.String({ maxLength: 100, description: `comma-separated: ${JOB_DEVICE_STATES.join(', ')}` })),
            after: Type.Optional(Type.String({ maxLength: 128 })),
            limit: Type.Integer({ minimum: 1, maximum: 5000, default: 500 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(JobDeviceSchema), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const s = states<JobDeviceState>(JOB_DEVICE_STATES, q.state);
      return jobs.devices(request.params.id, limitOf(request), { limit: q.limit, ...(s ? { states: s } : {}), ...(q.after !== undefined ? { after: q.after } : {}) });
    },
  );

  const summaries = {
    cancel: 'Cancel for good: no device is dispatched after this; queued devices end as cancelled, dispatched ones still report',
    pause: 'Pause: no device is dispatched until resumed; dispatched ones still report or time out',
    resume: 'Resume a paused job',
  } as const;
  for (const action of ['cancel', 'pause', 'resume'] as const) {
    app.post(
      `/api/v1/jobs/:id/${action}`,
      {
        config: { auth: { scope: 'jobs:write' }, groupLimit: 'filtered', audit: `job.${action}` },
        schema: {
          tags,
          security: bearer,
          params: IdParams,
          response: { 200: JobSchema, ...errorResponses },
          summary: summaries[action],
          body: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })) }, { additionalProperties: false })),
        },
      },
      async (request) => {
        request.auditTarget = request.params.id;
        const reason = request.body?.reason ?? `${action} by ${by(request)}`;
        request.auditDetails = { reason };
        return jobs.control(request.params.id, action, reason, by(request), limitOf(request));
      },
    );
  }
};
