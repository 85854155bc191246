import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { PlatformError } from '@bulwark/core';
import { bearer, errorResponses } from '../http/index.js';
import { parseTime } from '../ingest/index.js';
import type { ReplayJob, StreamReplays } from './replay.js';

const Job = Type.Object({
  id: Type.String(),
  state: Type.Enum(['running', 'done', 'failed']),
  sinceMs: Type.Integer(),
  untilMs: Type.Integer(),
  deviceId: Type.Optional(Type.String()),
  schemaId: Type.Optional(Type.String()),
  read: Type.Integer(),
  inserted: Type.Integer(),
  repeats: Type.Integer(),
  startedAt: Type.Integer(),
  finishedAt: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
});

const ReplayBody = Type.Object(
  {
    since: Type.String({ maxLength: 40, description: 'start of the range of receive times (inclusive): ISO 8601 with a zone, or epoch ms' }),
    until: Type.String({ maxLength: 40, description: 'end of the range (exclusive)' }),
    device: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' })),
    schema: Type.Optional(Type.String({ maxLength: 80, pattern: '^[a-z0-9][a-z0-9._-]{0,63}@[1-9][0-9]{0,5}$', description: '`name@version`' })),
  },
  { additionalProperties: false },
);

/** A time as the export takes it (ISO 8601 with a zone, or epoch ms), refused as a bad request of its own. */
function time(name: 'since' | 'until', text: string): number {
  try {
    return parseTime(name, text);
  } catch (err) {
    throw new PlatformError('BULWARK_ERR_BAD_REQUEST', (err as Error).message, { details: { param: name } });
  }
}

/** Embedded mode has no stream: the store is the only copy of a reading. */
function needStream(replays: StreamReplays | undefined): StreamReplays {
  if (!replays) throw new PlatformError('BULWARK_ERR_CONFLICT', 'replay reads the telemetry stream, which only cluster mode has: in embedded mode the store is the only copy of a reading');
  return replays;
}

const view = (j: ReplayJob) => ({ ...j });

/** Replays of the telemetry stream into the store (cluster mode). */
export const replayRoutes: FastifyPluginAsyncTypebox<{ replays: StreamReplays | undefined }> = async (app, { replays }) => {
  app.post(
    '/api/v1/telemetry/replay',
    {
      config: { auth: { scope: 'telemetry:write' }, audit: 'telemetry.replay' },
      schema: {
        tags: ['telemetry'],
        security: bearer,
        body: ReplayBody,
        summary:
          'Cluster mode: rebuild or backfill the store from the telemetry stream over a range of receive times (after restoring an older backup, say); readings the store has are skipped, the others written and folded into the rollups. Runs in the background on this node; 409 in embedded mode',
        response: { 202: Job, ...errorResponses },
      },
    },
    async (request, reply) => {
      const r = needStream(replays);
      const { since, until, device, schema } = request.body;
      const job = r.start({ sinceMs: time('since', since), untilMs: time('until', until), ...(device ? { deviceId: device } : {}), ...(schema ? { schemaId: schema } : {}) });
      request.auditDetails = { replay: job.id, since: job.sinceMs, until: job.untilMs, ...(device ? { device } : {}), ...(schema ? { schema } : {}) };
      return reply.code(202).send(view(job));
    },
  );

  app.get(
    '/api/v1/telemetry/replay',
    {
      config: { auth: { scope: 'telemetry:read' } },
      schema: { tags: ['telemetry'], security: bearer, summary: 'Replays run by this node, newest first', response: { 200: Type.Array(Job), ...errorResponses } },
    },
    async () => needStream(replays).list().map(view),
  );

  app.get(
    '/api/v1/telemetry/replay/:id',
    {
      config: { auth: { scope: 'telemetry:read' } },
      schema: { tags: ['telemetry'], security: bearer, params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) }), summary: 'One replay: its state and counts', response: { 200: Job, ...errorResponses } },
    },
    async (request) => view(needStream(replays).get(request.params.id)),
  );
};
