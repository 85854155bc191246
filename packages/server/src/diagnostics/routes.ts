import { BUILTIN_COMMANDS, DEVICE_MESSAGE_LIMITS } from '@bulwark/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Counter } from 'prom-client';
import Type from 'typebox';
import { IdParams, Nullable, bearer, errorResponses, SseWriter } from '../http/index.js';
import type { CommandService } from './commands.js';
import { COMMAND_STATES } from './diagnostics.js';
import { LOG_LEVELS, LOG_STREAM_TTL_S, type LogStreams } from './log-streams.js';

const NAME = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const CommandParams = Type.Object({ id: IdParams.properties.id, name: Type.String({ pattern: NAME, maxLength: 64 }) }, { additionalProperties: false });
const CommandIdParams = Type.Object({ id: IdParams.properties.id, cmdId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }, { additionalProperties: false });
const Level = Type.Enum([...LOG_LEVELS]);

export const CommandSchema = Type.Object({
  id: Type.String(),
  deviceId: Type.String(),
  name: Type.String(),
  params: Type.Record(Type.String(), Type.Unknown()),
  status: Type.Enum([...COMMAND_STATES]),
  issuedBy: Type.String(),
  issuedAt: Type.Integer(),
  expiresAt: Type.Integer(),
  sentAt: Nullable(Type.Integer()),
  sendCount: Type.Integer(),
  answeredAt: Nullable(Type.Integer()),
  reason: Nullable(Type.String()),
  detail: Nullable(Type.String()),
  output: Type.Unknown(),
  updatedAt: Type.Integer(),
});

const StreamStatus = Type.Object({
  deviceId: Type.String(),
  streaming: Type.Boolean(),
  until: Nullable(Type.Integer()),
  level: Nullable(Type.String()),
  received: Type.Integer(),
  dropped: Type.Integer(),
});

const LogEntry = Type.Object({
  deviceId: Type.String(),
  seq: Type.Integer(),
  receivedAt: Type.Integer(),
  ts: Type.Number(),
  level: Type.String(),
  msg: Type.String(),
  data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

export interface DiagnosticsRouteDeps {
  readonly commands: CommandService;
  readonly logs: LogStreams;
  readonly liveQueueLimit: number;
  readonly liveDropped: Counter;
}

/** Remote commands and remote logs. */
export const diagnosticsRoutes: FastifyPluginAsyncTypebox<DiagnosticsRouteDeps> = async (app, { commands, logs, liveQueueLimit, liveDropped }) => {
  app.post(
    '/api/v1/devices/:id/commands/:name',
    {
      config: { auth: { scope: 'devices:command' }, groupLimit: 'device', audit: 'device.command' },
      schema: {
        tags: ['commands'],
        security: bearer,
        params: CommandParams,
        response: { 201: CommandSchema, ...errorResponses },
        summary: 'Send a command: recorded, published at once (QoS 1) if the device is connected, else kept until it subscribes or ttlS passes (ifOffline: "refuse" answers 409 instead)',
        body: Type.Object(
          {
            params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
            ttlS: Type.Optional(Type.Integer({ minimum: 1, maximum: 604_800 })),
            ifOffline: Type.Optional(Type.Enum(['queue', 'refuse'])),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { id, name } = request.params;
      request.auditTarget = id;
      const b = request.body;
      const c = await commands.issue(id, name, b.params ?? {}, {
        actor: request.auth?.principal.id ?? 'unknown',
        ...(b.ttlS !== undefined ? { ttlS: b.ttlS } : {}),
        ...(b.ifOffline ? { ifOffline: b.ifOffline } : {}),
      });
      request.auditDetails = { command: name, commandId: c.id };
      return reply.code(201).send(c);
    },
  );

  app.get(
    '/api/v1/devices/:id/commands',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'device' },
      schema: {
        tags: ['commands'],
        security: bearer,
        params: IdParams,
        summary: "A device's commands, newest first",
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Enum([...COMMAND_STATES])),
            name: Type.Optional(Type.String({ pattern: NAME })),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(CommandSchema), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      return commands.list({ deviceId: request.params.id, limit: q.limit, ...(q.status ? { status: q.status } : {}), ...(q.name ? { name: q.name } : {}) });
    },
  );

  app.get(
    '/api/v1/devices/:id/commands/:cmdId',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'device' },
      schema: { tags: ['commands'], security: bearer, params: CommandIdParams, summary: 'One command and where it is', response: { 200: CommandSchema, ...errorResponses } },
    },
    async (request) => commands.get(request.params.id, request.params.cmdId),
  );

  app.post(
    '/api/v1/devices/:id/logs/stream',
    {
      config: { auth: { scope: 'devices:command' }, groupLimit: 'device', audit: 'device.logs.stream' },
      schema: {
        tags: ['logs'],
        security: bearer,
        params: IdParams,
        summary: `Stream the device's logs for durationS (≤ ${DEVICE_MESSAGE_LIMITS.logStreamMaxDurationS}) at level and above, sampled: sends the built-in logs.stream command (kept ${LOG_STREAM_TTL_S} s for an offline device)`,
        body: Type.Object(
          {
            level: Level,
            durationS: Type.Integer({ minimum: 1, maximum: DEVICE_MESSAGE_LIMITS.logStreamMaxDurationS }),
            sample: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ command: CommandSchema, stream: StreamStatus }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      request.auditTarget = id;
      const { level, durationS, sample } = request.body;
      const command = await commands.issue(id, BUILTIN_COMMANDS.logsStream, { level, durationS, sample: sample ?? 1 }, { actor: request.auth?.principal.id ?? 'unknown', ttlS: LOG_STREAM_TTL_S });
      request.auditDetails = { level, durationS, commandId: command.id };
      return reply.code(201).send({ command, stream: logs.status(id) });
    },
  );

  app.get(
    '/api/v1/devices/:id/logs',
    {
      config: { auth: { scope: 'devices:logs' }, groupLimit: 'device' },
      schema: {
        tags: ['logs'],
        security: bearer,
        params: IdParams,
        summary: 'Log entries streamed by the device (in-memory ring per device, oldest first); after=<seq> continues a read',
        querystring: Type.Object(
          {
            level: Type.Optional(Level),
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ stream: StreamStatus, entries: Type.Array(LogEntry) }), ...errorResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      await commands.list({ deviceId: id, limit: 1 }); // 404 for an unknown device
      const q = request.query;
      return { stream: logs.status(id), entries: logs.read(id, { limit: q.limit, ...(q.level ? { level: q.level } : {}), ...(q.after !== undefined ? { afterSeq: q.after } : {}) }) };
    },
  );

  app.get(
    '/api/v1/devices/:id/logs/live',
    {
      config: { auth: { scope: 'devices:logs' }, groupLimit: 'device' },
      schema: {
        tags: ['logs'],
        security: bearer,
        params: IdParams,
        summary: "The device's log entries as they arrive, as Server-Sent Events (event: log); a slow reader loses the oldest waiting entries (event: dropped)",
        querystring: Type.Object({ level: Type.Optional(Level) }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await commands.list({ deviceId: id, limit: 1 });
      const min = LOG_LEVELS.indexOf(request.query.level ?? 'trace');
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-request-id': request.id });
      const writer = new SseWriter(res, liveQueueLimit, liveDropped);
      writer.send('ready', logs.status(id));
      const unsubscribe = logs.subscribe(id, (e) => {
        if (LOG_LEVELS.indexOf(e.level) >= min) writer.send('log', e, String(e.seq));
      });
      request.raw.on('close', unsubscribe);
    },
  );
};
