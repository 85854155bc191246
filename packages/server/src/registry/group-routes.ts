import { PlatformError } from '@bulwark/core';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { Nullable, bearer, errorResponses } from '../http/index.js';
import { type GroupService, MEMBERS_PER_REQUEST } from './group-service.js';
import { GROUP_ID_PATTERN } from './groups.js';
import { DEVICE_ALERT_STATES, LIFECYCLE_STATES } from './registry.js';

const tags = ['groups'];
const Values = (description: string) => Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 32, description }));

/** The criteria of a dynamic group: all given must hold; a list matches any of its values (tags: all). */
export const GroupQuerySchema = Type.Object(
  {
    state: Type.Optional(Type.Array(Type.Enum([...LIFECYCLE_STATES]), { minItems: 1, maxItems: 5 })),
    model: Values('any of these models'),
    hardwareRevision: Values('any of these hardware revisions'),
    firmware: Values('any of these firmware versions'),
    owner: Values('any of these owners'),
    location: Values('any of these locations'),
    tags: Values('every one of these tags'),
    idPrefix: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'device ids that start with this' })),
    securityBelow: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647, description: 'security version below this, or unknown' })),
    online: Type.Optional(Type.Boolean()),
    offlineForMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 315_360_000_000, description: 'offline and last seen at least this long ago (at most 10 years)' })),
    healthBelow: Type.Optional(Type.Integer({ minimum: 1, maximum: 101, description: 'health score below this' })),
    alertState: Type.Optional(Type.Array(Type.Enum([...DEVICE_ALERT_STATES]), { minItems: 1, maxItems: 3 })),
  },
  { additionalProperties: false },
);

const Description = Type.String({ minLength: 1, maxLength: 512 });

export const GroupSchema = Type.Object({
  id: Type.String(),
  description: Nullable(Type.String()),
  kind: Type.Union([Type.Literal('static'), Type.Literal('dynamic')]),
  query: Type.Union([GroupQuerySchema, Type.Null()]),
  createdBy: Type.String(),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
});

const GROUP_ID = { minLength: 1, maxLength: 64, pattern: GROUP_ID_PATTERN };
const GroupId = Type.String(GROUP_ID);
const GroupParams = Type.Object({ id: GroupId });
const Members = Type.Object({ deviceIds: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: MEMBERS_PER_REQUEST }) }, { additionalProperties: false });

/** Device groups: list their devices with GET /api/v1/devices?group=ID. */
export const groupRoutes: FastifyPluginAsyncTypebox<{ groups: GroupService }> = async (app, { groups }) => {
  app.post(
    '/api/v1/groups',
    {
      config: { auth: { scope: 'groups:write' }, audit: 'group.create' },
      schema: {
        tags,
        security: bearer,
        summary: 'Create a device group: static (explicit members, at most 1000 at creation) or dynamic (a query over the registry, evaluated when used)',
        body: Type.Object(
          {
            id: Type.String({ ...GROUP_ID, description: 'the group\'s name: letters, digits, ".", "_" or "-", starting with a letter or digit' }),
            description: Type.Optional(Description),
            kind: Type.Union([Type.Literal('static'), Type.Literal('dynamic')]),
            query: Type.Optional(GroupQuerySchema),
            members: Type.Optional(Members.properties.deviceIds),
          },
          { additionalProperties: false },
        ),
        response: { 201: GroupSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      request.auditTarget = request.body.id;
      const b = request.body;
      const group = await groups.create(
        {
          id: b.id,
          kind: b.kind,
          ...(b.description !== undefined ? { description: b.description } : {}),
          ...(b.query !== undefined ? { query: b.query } : {}),
          ...(b.members !== undefined ? { members: b.members } : {}),
        },
        request.auth?.principal.id ?? 'unknown',
      );
      return reply.code(201).send(group);
    },
  );

  app.get(
    '/api/v1/groups',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'filtered' },
      schema: {
        tags,
        security: bearer,
        summary: 'Device groups by id; page with after=<last id>',
        querystring: Type.Object({ after: Type.Optional(Type.String({ maxLength: 64 })), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false }),
        response: { 200: Type.Array(GroupSchema), ...errorResponses },
      },
    },
    async (request) => {
      const all = await groups.list({ limit: request.query.limit, ...(request.query.after !== undefined ? { after: request.query.after } : {}) });
      // A caller limited to device groups sees those groups only.
      const limit = request.auth?.principal.deviceGroups ?? null;
      if (limit === null) return all;
      const after = request.query.after ?? '';
      const mine = (
        await Promise.all(
          [...limit]
            .sort()
            .filter((id) => id > after)
            .map((id) => groups.find(id)),
        )
      ).filter((g) => g !== undefined);
      return mine.slice(0, request.query.limit);
    },
  );

  app.get(
    '/api/v1/groups/:id',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'filtered' },
      schema: {
        tags,
        security: bearer,
        summary: 'A group, with how many devices are in it now (decommissioned ones included)',
        params: GroupParams,
        response: { 200: Type.Intersect([GroupSchema, Type.Object({ deviceCount: Type.Integer() })]), ...errorResponses },
      },
    },
    async (request) => {
      const limit = request.auth?.principal.deviceGroups ?? null;
      if (limit !== null && !limit.includes(request.params.id)) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no group ${request.params.id}`);
      return groups.get(request.params.id);
    },
  );

  app.patch(
    '/api/v1/groups/:id',
    {
      config: { auth: { scope: 'groups:write' }, audit: 'group.update' },
      schema: {
        tags,
        security: bearer,
        summary: "Change a group's description, or a dynamic group's query",
        params: GroupParams,
        body: Type.Object({ description: Type.Optional(Nullable(Description)), query: Type.Optional(GroupQuerySchema) }, { additionalProperties: false, minProperties: 1 }),
        response: { 200: GroupSchema, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const b = request.body;
      return groups.update(request.params.id, { ...(b.description !== undefined ? { description: b.description } : {}), ...(b.query !== undefined ? { query: b.query } : {}) });
    },
  );

  app.delete(
    '/api/v1/groups/:id',
    {
      config: { auth: { scope: 'groups:write' }, audit: 'group.delete' },
      schema: { tags, security: bearer, summary: 'Delete a group (its devices stay as they are)', params: GroupParams, response: { 204: Type.Null(), ...errorResponses } },
    },
    async (request, reply) => {
      request.auditTarget = request.params.id;
      await groups.delete(request.params.id);
      return reply.code(204).send(null);
    },
  );

  for (const verb of ['add', 'remove'] as const) {
    app.post(
      `/api/v1/groups/:id/members/${verb}`,
      {
        config: { auth: { scope: 'groups:write' }, audit: `group.members.${verb}` },
        schema: {
          tags,
          security: bearer,
          params: GroupParams,
          body: Members,
          summary: verb === 'add' ? 'Add devices to a static group, all or none (an unknown device refuses the request); answers how many were not members yet' : 'Remove devices from a static group',
          response: { 200: Type.Object({ [verb === 'add' ? 'added' : 'removed']: Type.Integer() }), ...errorResponses },
        },
      },
      async (request) => {
        request.auditTarget = request.params.id;
        const { id } = request.params;
        return verb === 'add' ? { added: await groups.addMembers(id, request.body.deviceIds) } : { removed: await groups.removeMembers(id, request.body.deviceIds) };
      },
    );
  }
};
