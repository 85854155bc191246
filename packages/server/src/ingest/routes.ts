import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type, { type Static } from 'typebox';
import { IdParams, bearer, errorResponses, SseWriter } from '../http/index.js';
import type { GroupSelector, RegistryService } from '../registry/index.js';
import { PlatformError } from '@bulwark/core';
import type { Counter } from 'prom-client';
import { hasScope } from '../access/index.js';
import { type LiveQuery, LiveFilter } from './live-filter.js';
import { sseSink, webSocketSink } from './live.js';
import type { FastifyRequest } from 'fastify';
import type { DeadLetterView } from './ingest.js';
import type { IngestService } from './pipeline.js';
import type { RetentionJob } from './retention.js';

const Problem = Type.Object({ path: Type.String(), expected: Type.String(), got: Type.String() });
const Reading = Type.Object({
  msgId: Type.String(),
  schemaId: Type.String(),
  seq: Type.Union([Type.Integer(), Type.Null()]),
  boot: Type.Union([Type.String(), Type.Null()]),
  deviceTs: Type.Union([Type.Integer(), Type.Null()]),
  receivedAt: Type.Integer(),
  ts: Type.Integer(),
  skewMs: Type.Union([Type.Integer(), Type.Null()]),
  data: Type.Record(Type.String(), Type.Unknown()),
});
const Letter = Type.Object({
  id: Type.String(),
  deviceId: Type.String(),
  transport: Type.String(),
  topic: Type.Union([Type.String(), Type.Null()]),
  receivedAt: Type.Integer(),
  reason: Type.String(),
  problems: Type.Array(Problem),
  schemaId: Type.Union([Type.String(), Type.Null()]),
  msgId: Type.Union([Type.String(), Type.Null()]),
  payload: Type.String({ description: 'As received (UTF-8 text, or `base64:` and the bytes); what is sealed shows as `***` unless revealed' }),
  replayedAt: Type.Union([Type.Integer(), Type.Null()]),
  replayResult: Type.Union([Type.String(), Type.Null()]),
  protection: Type.Enum(['whole', 'fields', 'none'], {
    description: "How the letter is kept at rest: `whole` (no usable schema: payload and problem values encrypted), `fields` (the schema's x-sensitive fields encrypted), `none` (stored in clear by an older version; shown masked)",
  }),
  sealedFields: Type.Array(Type.String(), { description: 'Fields under data kept encrypted' }),
  revealed: Type.Boolean({ description: 'True when sealed parts are shown in clear (decrypt=true)' }),
  decryptError: Type.Optional(Type.String({ description: 'Why a letter asked for in clear is still shown masked (it does not decrypt)' })),
});
const DecryptFlag = Type.Optional(
  Type.Boolean({
    description: 'Show sealed parts in clear (x-sensitive fields as a stored reading would show them; a letter with no usable schema whole); needs telemetry:decrypt, and is audited',
  }),
);
const Reason = Type.Enum(['invalid_utf8', 'malformed_json', 'malformed_cbor', 'too_deep', 'forbidden_key', 'forbidden_character', 'bad_envelope', 'unknown_schema', 'schema_violation']);

/** Stored readings and the dead-letter store. */
export interface IngestRouteDeps {
  readonly ingest: IngestService;
  readonly registry: RegistryService;
  /** Readings a live subscriber may have waiting before the oldest are dropped. */
  readonly liveQueueLimit: number;
  readonly liveDropped: Counter;
  readonly retention: RetentionJob;
  /** Decrypts a value stored as `enc:…` for its place (device/field). */
  readonly openValue: (text: string, context: string) => Promise<Buffer>;
  /** How the devices of device groups are selected (for a caller limited to groups). */
  readonly groups: { selectors(ids: readonly string[]): Promise<GroupSelector[]>; anyContains(ids: readonly string[], deviceId: string): Promise<boolean> };
}

export const ingestRoutes: FastifyPluginAsyncTypebox<IngestRouteDeps> = async (app, { ingest, registry, liveQueueLimit, liveDropped, retention, openValue, groups }) => {
  app.get(
    '/api/v1/devices/:id/telemetry',
    {
      config: { auth: { scope: 'telemetry:read' }, groupLimit: 'device' },
      schema: {
        tags: ['telemetry'],
        summary: "A device's readings in time order (normalised time), with device time, receive time and skew",
        security: bearer,
        params: IdParams,
        querystring: Type.Object(
          {
            since: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
            until: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
            limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
            order: Type.Optional(Type.Enum(['asc', 'desc'], { description: '`desc`: newest first (with limit=1, the latest reading); default oldest first' })),
            decrypt: Type.Optional(Type.Boolean({ description: 'Decrypt fields stored encrypted (x-sensitive: encrypt); needs telemetry:decrypt, and is audited' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(Reading), ...errorResponses },
      },
    },
    async (request) => {
      await registry.get(request.params.id);
      const { since, until, limit, order, decrypt } = request.query;
      const rows = await ingest.query({ deviceId: request.params.id, limit, ...(order === 'desc' ? { order } : {}), ...(since !== undefined ? { sinceMs: since } : {}), ...(until !== undefined ? { untilMs: until } : {}) });
      if (decrypt) {
        if (!hasScope(request.auth?.scopes ?? [], 'telemetry:decrypt')) throw new PlatformError('BULWARK_ERR_FORBIDDEN', 'decrypting needs the telemetry:decrypt scope', { details: { requiredScope: 'telemetry:decrypt' } });
        request.auditRead = 'telemetry.decrypt';
        request.auditTarget = request.params.id;
        const decrypted = await Promise.all(rows.map(async (r) => ({ ...r, data: await decryptFields(r.deviceId, r.data, openValue) })));
        request.auditDetails = { readings: rows.length };
        return decrypted.map(({ deviceId: _d, ...r }) => r);
      }
      return rows.map(({ deviceId: _d, ...r }) => r);
    },
  );

  app.get(
    '/api/v1/devices/:id/rollups',
    {
      config: { auth: { scope: 'telemetry:read' }, groupLimit: 'device' },
      schema: {
        tags: ['telemetry'],
        summary: 'Minimum, maximum, mean and count of one numeric field per minute or per hour',
        security: bearer,
        params: IdParams,
        querystring: Type.Object(
          {
            field: Type.String({ minLength: 1, maxLength: 128 }),
            resolution: Type.Enum(['1m', '1h']),
            since: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
            until: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
            limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1440 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Array(Type.Object({ field: Type.String(), schemaId: Type.String(), bucketStart: Type.Integer(), bucketMs: Type.Integer(), count: Type.Integer(), min: Type.Number(), max: Type.Number(), mean: Type.Number() })),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      await registry.get(request.params.id);
      const { field, resolution, since, until, limit } = request.query;
      return ingest.rollups({
        deviceId: request.params.id,
        field,
        bucketMs: resolution === '1m' ? 60_000 : 3_600_000,
        limit,
        ...(since !== undefined ? { sinceMs: since } : {}),
        ...(until !== undefined ? { untilMs: until } : {}),
      });
    },
  );

  app.get(
    '/api/v1/devices/:id/telemetry/live',
    {
      config: { auth: { scope: 'telemetry:read' }, groupLimit: 'device' },
      schema: {
        tags: ['telemetry'],
        security: bearer,
        params: IdParams,
        summary: "A device's readings as they are stored, as Server-Sent Events (event: reading); a slow reader loses the oldest waiting readings (event: dropped says how many), never slows the pipeline",
        querystring: Type.Object({ schema: Type.Optional(Type.String({ maxLength: 80 })) }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      await registry.get(request.params.id);
      const { id } = request.params;
      const schema = request.query.schema;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-request-id': request.id });
      const push = sseSink(new SseWriter(res, liveQueueLimit, liveDropped));
      const unsubscribe = ingest.onStored((r) => {
        if (r.deviceId === id && (schema === undefined || r.schemaId === schema)) push(r);
      });
      request.raw.on('close', unsubscribe);
      await ingest.liveReady();
      res.write(`event: ready\ndata: ${JSON.stringify({ deviceId: id })}\n\n`);
    },
  );

  app.get(
    '/api/v1/telemetry/clock-skew',
    {
      config: { auth: { scope: 'telemetry:read' } },
      schema: {
        tags: ['telemetry'],
        summary: 'Devices whose clocks are off by more than ingest.maxClockSkewMs, worst first (skewMs = receive time - device time)',
        security: bearer,
        response: { 200: Type.Array(Type.Object({ deviceId: Type.String(), skewMs: Type.Integer(), at: Type.Integer() })), ...errorResponses },
      },
    },
    async () => ingest.clocks.skewed(),
  );

  app.post(
    '/api/v1/telemetry/retention/run',
    {
      config: { auth: { scope: 'telemetry:write' }, audit: 'telemetry.retention-run' },
      schema: {
        tags: ['telemetry'],
        summary: 'Run the retention job now; each deletion also writes a receipt (telemetry.delete) to the audit log',
        security: bearer,
        response: { 200: Type.Array(Type.Object({ what: Type.String(), deleted: Type.Integer(), until: Type.Integer(), retentionDays: Type.Integer() })), ...errorResponses },
      },
    },
    async () => retention.run(),
  );

  app.get(
    '/api/v1/telemetry/live',
    {
      config: { auth: { scope: 'telemetry:read' }, groupLimit: 'filtered' },
      schema: {
        tags: ['telemetry'],
        security: bearer,
        summary: "Every stored reading of the fleet (optionally of one schema, a tag, or a list of devices) as Server-Sent Events, with the same bounded queue as the per-device stream; a tag's members are re-read every 30 s",
        querystring: LiveQueryString,
      },
    },
    async (request, reply) => {
      const filter = await LiveFilter.create(await limited(liveQuery(request.query), request, groups), registry);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-request-id': request.id });
      const push = sseSink(new SseWriter(res, liveQueueLimit, liveDropped));
      const unsubscribe = ingest.onStored((r) => {
        if (filter.matches(r)) push(r);
      });
      request.raw.on('close', () => {
        unsubscribe();
        filter.close();
      });
      await ingest.liveReady();
      res.write('event: ready\ndata: {}\n\n');
    },
  );

  app.get(
    '/api/v1/telemetry/ws',
    {
      websocket: true,
      config: { auth: { scope: 'telemetry:read' }, groupLimit: 'filtered' },
      schema: {
        tags: ['telemetry'],
        security: bearer,
        summary: 'Stored readings over a WebSocket (one JSON reading per message), for devices, a schema, a tag, or the fleet; a slow reader loses readings (counted), never slows the pipeline',
        querystring: LiveQueryString,
      },
    },
    async (socket, request) => {
      const filter = await LiveFilter.create(await limited(liveQuery(request.query), request, groups), registry);
      const sink = webSocketSink(socket, liveQueueLimit * 1024, liveDropped);
      const unsubscribe = ingest.onStored((r) => {
        if (filter.matches(r)) sink(r);
      });
      socket.on('close', () => {
        unsubscribe();
        filter.close();
      });
      await ingest.liveReady();
      socket.send(JSON.stringify({ ready: true }));
    },
  );

  app.get(
    '/api/v1/dead-letters',
    {
      config: { auth: { scope: 'telemetry:read' }, groupLimit: 'filtered' },
      schema: {
        tags: ['telemetry'],
        summary: 'Messages the pipeline refused, newest first, with the exact reason; sealed parts (x-sensitive fields, or the whole payload when no schema applies) masked unless decrypt=true',
        security: bearer,
        querystring: Type.Object(
          {
            device: Type.Optional(Type.String({ maxLength: 128 })),
            reason: Type.Optional(Reason),
            schema: Type.Optional(Type.String({ maxLength: 80 })),
            replayed: Type.Optional(Type.Boolean({ description: 'true: only letters already replayed; false: only letters never replayed' })),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            decrypt: DecryptFlag,
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(Letter), ...errorResponses },
      },
    },
    async (request) => {
      const { device, reason, schema, replayed, limit, decrypt } = request.query;
      if (decrypt) auditDecrypt(request, device);
      const limited = request.auth?.principal.deviceGroups ?? null;
      const within = limited === null ? {} : { within: await groups.selectors(limited) };
      const letters = await ingest.listDeadLetters(
        { limit, ...(device ? { deviceId: device } : {}), ...(reason ? { reason: reason } : {}), ...(schema ? { schemaId: schema } : {}), ...(replayed !== undefined ? { replayed } : {}), ...within },
        decrypt === true,
      );
      if (decrypt) request.auditDetails = decryptDetails(letters);
      return letters as never;
    },
  );

  app.delete(
    '/api/v1/dead-letters',
    {
      config: { auth: { scope: 'telemetry:write' }, groupLimit: 'filtered', audit: 'dead-letter.purge' },
      schema: {
        tags: ['telemetry'],
        summary: 'Delete the dead letters a filter selects (at least one filter: a device, reason, schema, receive time or replayed=true); answers how many',
        security: bearer,
        querystring: Type.Object(
          {
            device: Type.Optional(Type.String({ maxLength: 128 })),
            reason: Type.Optional(Reason),
            schema: Type.Optional(Type.String({ maxLength: 80 })),
            before: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Only letters received before this time (epoch ms)' })),
            replayed: Type.Optional(Type.Boolean({ description: 'Only letters already replayed' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ deleted: Type.Integer() }), ...errorResponses },
      },
    },
    async (request) => {
      const { device, reason, schema, before, replayed } = request.query;
      if (device === undefined && reason === undefined && schema === undefined && before === undefined && replayed !== true) {
        throw new PlatformError('BULWARK_ERR_VALIDATION', 'a purge needs at least one filter (device, reason, schema, before or replayed=true)');
      }
      if (device !== undefined) request.auditTarget = device;
      const limit = request.auth?.principal.deviceGroups ?? null;
      const deleted = await ingest.purgeDeadLetters({
        ...(device ? { deviceId: device } : {}),
        ...(reason ? { reason: reason } : {}),
        ...(schema ? { schemaId: schema } : {}),
        ...(before !== undefined ? { beforeMs: before } : {}),
        ...(replayed ? { replayed } : {}),
        ...(limit === null ? {} : { within: await groups.selectors(limit) }),
      });
      request.auditDetails = { deleted, filter: request.query };
      return { deleted };
    },
  );

  app.get(
    '/api/v1/dead-letters/:id',
    {
      config: { auth: { scope: 'telemetry:read' }, groupLimit: 'filtered' },
      schema: {
        tags: ['telemetry'],
        summary: 'One dead letter, masked unless decrypt=true',
        security: bearer,
        params: IdParams,
        querystring: Type.Object({ decrypt: DecryptFlag }, { additionalProperties: false }),
        response: { 200: Letter, ...errorResponses },
      },
    },
    async (request) => {
      const decrypt = request.query.decrypt === true;
      await letterVisible(request, request.params.id, ingest, groups);
      if (decrypt) auditDecrypt(request, request.params.id);
      const letter = await ingest.getDeadLetter(request.params.id, decrypt);
      if (decrypt) request.auditDetails = decryptDetails([letter]);
      return letter as never;
    },
  );

  app.post(
    '/api/v1/dead-letters/:id/replay',
    {
      config: { auth: { scope: 'telemetry:write' }, groupLimit: 'filtered', audit: 'dead-letter.replay' },
      schema: {
        tags: ['telemetry'],
        summary: 'Run a dead letter through the pipeline again (after a fix); replaying twice stores once',
        security: bearer,
        params: IdParams,
        response: { 200: Type.Object({ status: Type.String(), reason: Type.Optional(Type.String()), deadLetterId: Type.Optional(Type.String()) }), ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      await letterVisible(request, request.params.id, ingest, groups);
      const result = await ingest.replay(request.params.id);
      return result.status === 'dead_lettered' ? { status: result.status, reason: result.reason, deadLetterId: result.id } : { status: result.status };
    },
  );
};

const LiveQueryString = Type.Object(
  {
    schema: Type.Optional(Type.String({ maxLength: 80 })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    devices: Type.Optional(Type.String({ maxLength: 8192, description: 'comma-separated device ids' })),
    device: Type.Optional(Type.String({ maxLength: 128, description: 'one device id (same as devices with one id)' })),
  },
  { additionalProperties: false },
);

/** A dead letter of a device outside a limited caller's groups is not found, as for an unknown id. */
async function letterVisible(request: FastifyRequest, id: string, ingest: IngestService, groups: IngestRouteDeps['groups']): Promise<void> {
  const limit = request.auth?.principal.deviceGroups ?? null;
  if (limit === null) return;
  const letter = await ingest.getDeadLetter(id);
  if (!(await groups.anyContains(limit, letter.deviceId))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no dead letter ${id}`);
}

/** A caller limited to device groups follows only their devices. */
async function limited(q: LiveQuery, request: FastifyRequest, groups: IngestRouteDeps['groups']): Promise<LiveQuery> {
  const limit = request.auth?.principal.deviceGroups ?? null;
  return limit === null ? q : { ...q, within: await groups.selectors(limit) };
}

function liveQuery(q: Static<typeof LiveQueryString>): LiveQuery {
  const ids = [...(q.devices ? q.devices.split(',') : []), ...(q.device ? [q.device] : [])];
  return { ...(ids.length > 0 ? { devices: new Set(ids) } : {}), ...(q.schema !== undefined ? { schema: q.schema } : {}), ...(q.tag !== undefined ? { tag: q.tag } : {}) };
}

/** Refuses a caller without telemetry:decrypt (403, audited as a refusal); otherwise marks the read for the audit log. */
function auditDecrypt(request: FastifyRequest, target: string | undefined): void {
  if (!hasScope(request.auth?.scopes ?? [], 'telemetry:decrypt')) throw new PlatformError('BULWARK_ERR_FORBIDDEN', 'decrypting needs the telemetry:decrypt scope', { details: { requiredScope: 'telemetry:decrypt' } });
  request.auditRead = 'dead-letter.decrypt';
  if (target !== undefined) request.auditTarget = target;
}

function decryptDetails(letters: readonly DeadLetterView[]): Record<string, unknown> {
  const failed = letters.filter((l) => l.decryptError !== undefined).map((l) => l.id);
  // Which letters were read in clear (the first 100 of a long list), and which did not decrypt.
  return { deadLetters: letters.length, ids: letters.slice(0, 100).map((l) => l.id), ...(failed.length > 0 ? { undecryptable: failed } : {}) };
}

async function decryptFields(deviceId: string, data: Readonly<Record<string, unknown>>, openValue: IngestRouteDeps['openValue']): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { ...data };
  for (const [field, value] of Object.entries(data)) {
    if (typeof value === 'string' && value.startsWith('enc:')) out[field] = JSON.parse((await openValue(value, `${deviceId}/${field}`)).toString('utf8'));
  }
  return out;
}
