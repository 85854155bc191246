import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { isPlatformError } from '@bulwark/core';
import { IdParams, Nullable, bearer, errorResponses } from '../http/index.js';
import type { WebhookService } from './service.js';

const Names = Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 1000 });
const Filter = Type.Object(
  {
    schemaIds: Type.Optional(Names),
    deviceIds: Type.Optional(Names),
    tags: Type.Optional(Names),
    groups: Type.Optional(Names),
  },
  { additionalProperties: false, description: 'Which readings: of these schemas (name@version), from these devices, devices with any of these tags or devices in any of these groups (members re-read as the webhook delivers); empty lists do not narrow' },
);
const Url = Type.String({ minLength: 8, maxLength: 2048, description: 'https:// URL of the receiver' });
const Name = Type.String({ minLength: 1, maxLength: 128 });

const View = Type.Object({
  id: Type.String(),
  name: Type.String(),
  url: Type.String(),
  filter: Type.Object({ schemaIds: Type.Array(Type.String()), deviceIds: Type.Array(Type.String()), tags: Type.Array(Type.String()) }),
  state: Type.String({ description: 'active or paused' }),
  pausedReason: Nullable(Type.String()),
  pausedAt: Nullable(Type.Integer()),
  lag: Nullable(Type.Integer({ description: 'Feed entries after the cursor (any reading, before the filter)' })),
  pending: Type.Union([Type.Object({ id: Type.String(), readings: Type.Integer(), attempts: Type.Integer(), nextAttemptAt: Nullable(Type.Integer()) }), Type.Null()]),
  lastError: Nullable(Type.String()),
  lastAttemptAt: Nullable(Type.Integer()),
  lastSuccessAt: Nullable(Type.Integer()),
  delivered: Type.Integer(),
  createdBy: Type.String(),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
});
const WithSecret = Type.Intersect([View, Type.Object({ secret: Type.String({ description: 'The signing secret, shown this once' }) })]);
const Result = Type.Object({
  ok: Type.Boolean(),
  deliveryId: Type.String(),
  status: Nullable(Type.Integer()),
  durationMs: Type.Integer(),
  error: Type.Optional(Type.String()),
  refused: Type.Optional(Type.String()),
});
const DeadLetter = Type.Object({
  id: Type.String(),
  webhookId: Type.String(),
  readings: Type.Integer(),
  attempts: Type.Integer(),
  lastError: Nullable(Type.String()),
  failedAt: Type.Integer(),
  replayedAt: Nullable(Type.Integer()),
  replayResult: Nullable(Type.String()),
  readingIds: Type.Array(Type.String()),
});
const LetterParams = Type.Object({ id: IdParams.properties.id, letterId: IdParams.properties.id }, { additionalProperties: false });

const tags = ['webhooks'];

/** Webhook subscriptions: signed batches of readings to HTTPS receivers. */
export const webhookRoutes: FastifyPluginAsyncTypebox<{ webhooks: WebhookService }> = async (app, { webhooks }) => {
  // A refused URL is audited with its reason (the SSRF guard's decisions are worth a record).
  const noteRefusal = (request: { auditDetails?: Record<string, unknown> }, err: unknown) => {
    if (isPlatformError(err) && err.details?.reason !== undefined) request.auditDetails = { ...request.auditDetails, reason: err.details.reason };
    return err;
  };

  app.post(
    '/api/v1/webhooks',
    {
      config: { auth: { scope: 'webhooks:write' }, audit: 'webhook.create' },
      schema: {
        tags,
        security: bearer,
        summary: 'Create a subscription; the answer holds its signing secret, shown this once',
        body: Type.Object(
          {
            name: Name,
            url: Url,
            filter: Type.Optional(Filter),
            from: Type.Optional(Type.Union([Type.Literal('now'), Type.Literal('earliest'), Type.Integer({ minimum: 0, description: 'readings received since this time (ms)' })])),
          },
          { additionalProperties: false },
        ),
        response: { 201: WithSecret, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { name, url, filter, from } = request.body;
      request.auditDetails = { url };
      const created = await webhooks.create({ name, url, ...(filter ? { filter } : {}), ...(from !== undefined ? { from } : {}) }, request.auth?.principal.id ?? 'unknown').catch((err: unknown) => {
        throw noteRefusal(request, err);
      });
      request.auditTarget = created.webhook.id;
      return reply.code(201).send({ ...created.webhook, secret: created.secret } as never);
    },
  );

  app.get(
    '/api/v1/webhooks',
    {
      config: { auth: { scope: 'webhooks:read' } },
      schema: { tags, security: bearer, summary: 'Every subscription with its state, lag and last error', response: { 200: Type.Array(View), ...errorResponses } },
    },
    async () => (await webhooks.list()) as never,
  );

  app.get(
    '/api/v1/webhooks/:id',
    {
      config: { auth: { scope: 'webhooks:read' } },
      schema: { tags, security: bearer, summary: 'One subscription', params: IdParams, response: { 200: View, ...errorResponses } },
    },
    async (request) => (await webhooks.get(request.params.id)) as never,
  );

  app.patch(
    '/api/v1/webhooks/:id',
    {
      config: { auth: { scope: 'webhooks:write' }, audit: 'webhook.update' },
      schema: {
        tags,
        security: bearer,
        summary: 'Change the name, URL or filter (the cursor stays)',
        params: IdParams,
        body: Type.Object({ name: Type.Optional(Name), url: Type.Optional(Url), filter: Type.Optional(Filter) }, { additionalProperties: false }),
        response: { 200: View, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      request.auditDetails = { ...request.body };
      const { name, url, filter } = request.body;
      return (await webhooks.update(request.params.id, { ...(name !== undefined ? { name } : {}), ...(url !== undefined ? { url } : {}), ...(filter ? { filter } : {}) }).catch((err: unknown) => {
        throw noteRefusal(request, err);
      })) as never;
    },
  );

  app.delete(
    '/api/v1/webhooks/:id',
    {
      config: { auth: { scope: 'webhooks:write' }, audit: 'webhook.delete' },
      schema: { tags, security: bearer, summary: 'Delete a subscription and its dead letters', params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
    },
    async (request, reply) => {
      request.auditTarget = request.params.id;
      await webhooks.delete(request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/webhooks/:id/pause',
    {
      config: { auth: { scope: 'webhooks:write' }, audit: 'webhook.pause' },
      schema: {
        tags,
        security: bearer,
        summary: 'Stop delivering until resumed (a batch under way is kept)',
        params: IdParams,
        body: Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) }, { additionalProperties: false }),
        response: { 200: View, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const reason = request.body.reason ?? `paused by ${request.auth?.principal.id ?? 'unknown'}`;
      request.auditDetails = { reason };
      return (await webhooks.pause(request.params.id, reason)) as never;
    },
  );

  app.post(
    '/api/v1/webhooks/:id/resume',
    {
      config: { auth: { scope: 'webhooks:write' }, audit: 'webhook.resume' },
      schema: {
        tags,
        security: bearer,
        summary: 'Deliver again, starting with the batch under way (with a full set of attempts)',
        params: IdParams,
        body: Type.Optional(Type.Object({}, { additionalProperties: false })),
        response: { 200: View, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      return (await webhooks.resume(request.params.id)) as never;
    },
  );

  app.post(
    '/api/v1/webhooks/:id/rotate-secret',
    {
      config: { auth: { scope: 'webhooks:write' }, audit: 'webhook.rotate_secret' },
      schema: {
        tags,
        security: bearer,
        summary: 'Replace the signing secret; the answer holds the new one, shown this once',
        params: IdParams,
        body: Type.Optional(Type.Object({}, { additionalProperties: false })),
        response: { 200: WithSecret, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const rotated = await webhooks.rotateSecret(request.params.id);
      return { ...rotated.webhook, secret: rotated.secret } as never;
    },
  );

  app.post(
    '/api/v1/webhooks/:id/test',
    {
      config: { auth: { scope: 'webhooks:write' }, audit: 'webhook.test' },
      schema: {
        tags,
        security: bearer,
        summary: 'Send one signed delivery without readings ("test": true) now, and say how the receiver answered',
        params: IdParams,
        body: Type.Optional(Type.Object({}, { additionalProperties: false })),
        response: { 200: Result, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const result = await webhooks.testDelivery(request.params.id);
      request.auditDetails = { ok: result.ok, status: result.status };
      return result;
    },
  );

  app.get(
    '/api/v1/webhooks/:id/dead-letters',
    {
      config: { auth: { scope: 'webhooks:read' } },
      schema: {
        tags,
        security: bearer,
        summary: 'Batches that failed every attempt, newest first',
        params: IdParams,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false }),
        response: { 200: Type.Array(DeadLetter), ...errorResponses },
      },
    },
    async (request) =>
      (await webhooks.deadLetters(request.params.id, request.query.limit ?? 100)).map(({ body, ...letter }) => ({
        ...letter,
        readingIds: ((JSON.parse(body) as { readings?: { id: string }[] }).readings ?? []).map((r) => r.id),
      })) as never,
  );

  app.post(
    '/api/v1/webhooks/:id/dead-letters/:letterId/replay',
    {
      config: { auth: { scope: 'webhooks:write' }, audit: 'webhook.replay' },
      schema: {
        tags,
        security: bearer,
        summary: 'Send a dead-lettered batch again, once, as it was (same batch id and reading ids)',
        params: LetterParams,
        body: Type.Optional(Type.Object({}, { additionalProperties: false })),
        response: { 200: Result, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = `${request.params.id}/${request.params.letterId}`;
      const result = await webhooks.replay(request.params.id, request.params.letterId);
      request.auditDetails = { ok: result.ok, status: result.status };
      return result;
    },
  );
};
