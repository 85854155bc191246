import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/index.js';
import type { SchemaDocument } from './schemas.js';
import type { SchemaService } from './service.js';

const SchemaView = Type.Object({ name: Type.String(), version: Type.Integer(), document: Type.Record(Type.String(), Type.Unknown()), createdAt: Type.Integer(), createdBy: Type.String() });
const NameVersion = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
    version: Type.Integer({ minimum: 1, maximum: 999_999 }),
  },
  { additionalProperties: false },
);
const Problem = Type.Object({ path: Type.String(), expected: Type.String(), got: Type.String() });

/** The telemetry schema registry. */
export const schemaRoutes: FastifyPluginAsyncTypebox<{ schemas: SchemaService }> = async (app, { schemas }) => {
  app.post(
    '/api/v1/schemas',
    {
      config: { auth: { scope: 'schemas:write' }, audit: 'schema.register' },
      schema: {
        tags: ['schemas'],
        security: bearer,
        summary: 'Register a schema version: a JSON Schema whose $id is name@version, with x-unit on every numeric field; checked for compatibility with the previous version',
        // `$id` is checked by the registry: a property named $id here would confuse the OpenAPI generator.
        body: Type.Object({ type: Type.Literal('object'), properties: Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown())) }, { additionalProperties: true }),
        response: { 201: SchemaView, ...errorResponses },
      },
    },
    async (request, reply) => {
      request.auditTarget = String((request.body as Record<string, unknown>).$id ?? 'no-id');
      const schema = await schemas.register(request.body as unknown as SchemaDocument, request.auth?.principal.id ?? 'unknown');
      return reply.code(201).send(schema);
    },
  );

  app.post(
    '/api/v1/schemas/check',
    {
      config: { auth: { scope: 'schemas:read' }, groupLimit: 'none' },
      schema: {
        tags: ['schemas'],
        security: bearer,
        summary: 'Check a schema document as registering it would (it compiles, its version is new and higher, it is compatible with the latest version), and optionally a data object against it; stores nothing',
        body: Type.Object({ schema: Type.Record(Type.String(), Type.Unknown()), data: Type.Optional(Type.Unknown()) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            id: Type.Union([Type.String(), Type.Null()]),
            problems: Type.Array(Type.String()),
            registered: Type.Boolean(),
            latestVersion: Type.Union([Type.Integer(), Type.Null()]),
            data: Type.Optional(Type.Object({ ok: Type.Boolean(), problems: Type.Array(Problem) })),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => (await schemas.check(request.body.schema as unknown as SchemaDocument, request.body.data)) as never,
  );

  app.get(
    '/api/v1/schemas',
    {
      config: { auth: { scope: 'schemas:read' }, groupLimit: 'none' },
      schema: { tags: ['schemas'], summary: 'Every schema version', security: bearer, response: { 200: Type.Array(SchemaView), ...errorResponses } },
    },
    async () => (await schemas.list()) as never,
  );

  app.get(
    '/api/v1/schemas/:name/versions/:version',
    {
      config: { auth: { scope: 'schemas:read' }, groupLimit: 'none' },
      schema: { tags: ['schemas'], summary: 'One schema version', security: bearer, params: NameVersion, response: { 200: SchemaView, ...errorResponses } },
    },
    async (request) => (await schemas.get(request.params.name, request.params.version)) as never,
  );

  app.post(
    '/api/v1/schemas/:name/versions/:version/validate',
    {
      config: { auth: { scope: 'schemas:read' }, groupLimit: 'none' },
      schema: {
        tags: ['schemas'],
        summary: 'Check a data object against a schema version, without storing anything',
        security: bearer,
        params: NameVersion,
        body: Type.Object({ data: Type.Unknown() }, { additionalProperties: false }),
        response: { 200: Type.Object({ ok: Type.Boolean(), problems: Type.Array(Problem) }), ...errorResponses },
      },
    },
    async (request) => {
      await schemas.get(request.params.name, request.params.version);
      const result = await schemas.validate(`${request.params.name}@${request.params.version}`, request.body.data);
      return { ok: result.ok, problems: result.ok ? [] : result.problems };
    },
  );
};
