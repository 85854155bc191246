import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/index.js';
import type { AuditService } from './service.js';

const Entry = Type.Object({
  seq: Type.Integer(),
  ts: Type.Integer(),
  actor: Type.String(),
  action: Type.String(),
  target: Type.Union([Type.String(), Type.Null()]),
  result: Type.String(),
  requestId: Type.Union([Type.String(), Type.Null()]),
  source: Type.Union([Type.String(), Type.Null()]),
  details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  prevHash: Type.String(),
  hash: Type.String(),
});

const CheckpointReport = Type.Object({
  checked: Type.Integer(),
  ok: Type.Boolean(),
  pinnedSeq: Type.Integer(),
  problems: Type.Array(Type.Object({ seq: Type.Union([Type.Integer(), Type.Null()]), problem: Type.String(), message: Type.String() })),
});

const Report = Type.Object({
  ok: Type.Boolean(),
  entriesChecked: Type.Integer(),
  headSeq: Type.Integer(),
  firstBadSeq: Type.Union([Type.Integer(), Type.Null()]),
  problem: Type.Union([Type.String(), Type.Null()]),
  message: Type.String(),
  checkpoints: Type.Optional(CheckpointReport),
});

export const auditRoutes: FastifyPluginAsyncTypebox<{ audit: AuditService }> = async (app, { audit }) => {
  app.get(
    '/api/v1/audit',
    {
      config: { auth: { scope: 'audit:read' } },
      schema: {
        tags: ['audit'],
        summary: 'Audit log entries, newest first; page with before=<seq of the last entry seen>',
        security: bearer,
        querystring: Type.Object(
          {
            actor: Type.Optional(Type.String({ maxLength: 128 })),
            action: Type.Optional(Type.String({ maxLength: 128 })),
            result: Type.Optional(Type.Union([Type.Literal('ok'), Type.Literal('denied'), Type.Literal('revoked'), Type.Literal('error')])),
            since: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'milliseconds since the epoch, inclusive' })),
            until: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'milliseconds since the epoch, exclusive' })),
            before: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(Entry), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      return audit.list({
        limit: q.limit,
        ...(q.actor !== undefined ? { actor: q.actor } : {}),
        ...(q.action !== undefined ? { action: q.action } : {}),
        ...(q.result !== undefined ? { result: q.result } : {}),
        ...(q.since !== undefined ? { sinceMs: q.since } : {}),
        ...(q.until !== undefined ? { untilMs: q.until } : {}),
        ...(q.before !== undefined ? { beforeSeq: q.before } : {}),
      });
    },
  );

  app.post(
    '/api/v1/audit/verify',
    {
      config: { auth: { scope: 'audit:read' }, audit: 'audit.verify' },
      schema: {
        tags: ['audit'],
        summary: 'Walk the hash chain and report the first edited, removed or truncated entry; with checkpoints (lines of the checkpoint file), also a chain rewritten whole',
        security: bearer,
        body: Type.Optional(Type.Object({ checkpoints: Type.Optional(Type.Array(Type.Unknown(), { minItems: 1, maxItems: 1000 })) }, { additionalProperties: false })),
        response: { 200: Report, ...errorResponses },
      },
    },
    async (request) => audit.verify(request.body?.checkpoints),
  );
};
