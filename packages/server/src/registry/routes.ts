import { PlatformError } from '@bulwark/core';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { IdParams, Nullable, bearer, errorResponses } from '../http/index.js';
import { DEVICE_ALERT_STATES, type DeviceFilter, HEALTH_BANDS, LIFECYCLE_STATES } from './registry.js';
import type { GroupService } from './group-service.js';
import { GROUP_ID_PATTERN } from './groups.js';
import type { RegistryService } from './service.js';

const Text = Type.String({ minLength: 1, maxLength: 128 });
const Tag = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:=-]+$' });
const State = Type.Enum([...LIFECYCLE_STATES]);

export const DeviceSchema = Type.Object({
  id: Type.String(),
  serial: Nullable(Type.String()),
  model: Nullable(Type.String()),
  hardwareRevision: Nullable(Type.String()),
  firmwareVersion: Nullable(Type.String()),
  securityVersion: Type.Union([Type.Integer(), Type.Null()]),
  owner: Nullable(Type.String()),
  location: Nullable(Type.String()),
  tags: Type.Array(Type.String()),
  state: Type.String(),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
  connectivity: Type.Object({
    online: Type.Boolean(),
    onlineSince: Type.Union([Type.Integer(), Type.Null()]),
    lastSeenAt: Type.Union([Type.Integer(), Type.Null()]),
    connectCount: Type.Integer(),
    lastDisconnectAt: Type.Union([Type.Integer(), Type.Null()]),
    lastDisconnectReason: Nullable(Type.String()),
  }),
  healthScore: Type.Integer({ minimum: 0, maximum: 100, description: '100 less a penalty per open alert of the device (critical 40, warning 15, info 5)' }),
});

const counts = <K extends string>(keys: readonly K[]) => Type.Object(Object.fromEntries(keys.map((k) => [k, Type.Integer()])) as Record<K, ReturnType<typeof Type.Integer>>);
const ValueCounts = Type.Array(Type.Object({ value: Nullable(Type.String()), count: Type.Integer() }), { description: 'most devices first; value null: none recorded' });

export const FleetCountsSchema = Type.Object({
  total: Type.Integer({ description: 'every registered device, decommissioned ones included' }),
  byState: counts(LIFECYCLE_STATES),
  byConnectivity: counts(['online', 'offline'] as const),
  byHealth: counts(HEALTH_BANDS),
  byAlertState: counts(DEVICE_ALERT_STATES),
  byModel: ValueCounts,
  byFirmware: ValueCounts,
});

export const NewDeviceSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128, description: 'Letters, digits, ".", "_", ":" or "-"; becomes the certificate name and the topic level' }),
    serial: Type.Optional(Text),
    model: Type.Optional(Text),
    hardwareRevision: Type.Optional(Text),
    firmwareVersion: Type.Optional(Text),
    owner: Type.Optional(Text),
    location: Type.Optional(Text),
    tags: Type.Optional(Type.Array(Tag, { maxItems: 32 })),
  },
  { additionalProperties: false },
);

const stripUndefined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** Device inventory and lifecycle. */
export const registryRoutes: FastifyPluginAsyncTypebox<{ registry: RegistryService; groups: GroupService; checkOwner: (owner: string) => Promise<void> }> = async (app, { registry, groups, checkOwner }) => {
  app.post(
    '/api/v1/devices',
    {
      config: { auth: { scope: 'devices:write' }, audit: 'device.create' },
      schema: { tags: ['devices'], summary: 'Register a device (state manufactured)', security: bearer, body: NewDeviceSchema, response: { 201: DeviceSchema, ...errorResponses } },
    },
    async (request, reply) => {
      request.auditTarget = request.body.id;
      if (request.body.owner !== undefined) await checkOwner(request.body.owner);
      return reply.code(201).send(await registry.create(stripUndefined(request.body)));
    },
  );

  app.get(
    '/api/v1/devices',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'filtered' },
      schema: {
        tags: ['devices'],
        summary:
          'List devices by id; filter by state, model, tag, firmware version, security version (exact, or below a value), connectivity (online, or offline since before seenBefore), group and twin drift (drifted=true: desired and reported disagree for longer than twin.driftThresholdMs); page with after=<last id>',
        security: bearer,
        querystring: Type.Object(
          {
            state: Type.Optional(State),
            model: Type.Optional(Text),
            tag: Type.Optional(Tag),
            firmware: Type.Optional(Text),
            security: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
            securityBelow: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
            group: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: GROUP_ID_PATTERN, description: 'only devices in this group (GET /api/v1/groups)' })),
            online: Type.Optional(Type.Boolean()),
            seenBefore: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'only devices offline and last seen before this time (ms since the epoch)' })),
            drifted: Type.Optional(Type.Literal(true)),
            after: Type.Optional(Text),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            sort: Type.Optional(Type.Union([Type.Literal('id'), Type.Literal('health')], { description: 'health: worst health score first (page on with afterHealth and after from the last row)' })),
            afterHealth: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(DeviceSchema), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const group = q.group === undefined ? undefined : await groups.selector(q.group);
      // A caller limited to device groups sees only their devices.
      const limit = request.auth?.principal.deviceGroups ?? null;
      const within = limit === null ? undefined : await groups.selectors(limit);
      return registry.list(
        stripUndefined({
          group,
          within,
          state: q.state,
          model: q.model,
          tag: q.tag,
          firmwareVersion: q.firmware,
          securityVersion: q.security,
          securityVersionBelow: q.securityBelow,
          online: q.online,
          seenBefore: q.seenBefore,
          drifted: q.drifted,
          after: q.after,
          limit: q.limit,
          sort: q.sort,
          afterHealth: q.afterHealth,
        }) as unknown as DeviceFilter,
      );
    },
  );

  app.get(
    '/api/v1/devices/stats',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'filtered' },
      schema: {
        tags: ['devices'],
        security: bearer,
        summary:
          'Fleet counts in one call: by lifecycle state (every registered device), and by connectivity, health band (good from 80, fair from 50, poor below), alert state, model and firmware version (devices not decommissioned); kept as devices change, exact, never a scan (for a caller limited to device groups: the devices of its groups, counted by a scan of them)',
        response: { 200: FleetCountsSchema, ...errorResponses },
      },
    },
    async (request) => {
      const limit = request.auth?.principal.deviceGroups ?? null;
      return registry.counts(limit === null ? undefined : await groups.selectors(limit));
    },
  );

  app.get(
    '/api/v1/devices/:id',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'device' },
      schema: { tags: ['devices'], summary: 'Show a device', security: bearer, params: IdParams, response: { 200: DeviceSchema, ...errorResponses } },
    },
    async (request) => registry.get(request.params.id),
  );

  app.patch(
    '/api/v1/devices/:id',
    {
      config: { auth: { scope: 'devices:write' }, groupLimit: 'device', audit: 'device.update' },
      schema: {
        tags: ['devices'],
        summary: 'Change inventory attributes (null clears one)',
        security: bearer,
        params: IdParams,
        body: Type.Object(
          {
            serial: Type.Optional(Nullable(Text)),
            model: Type.Optional(Nullable(Text)),
            hardwareRevision: Type.Optional(Nullable(Text)),
            owner: Type.Optional(Nullable(Text)),
            location: Type.Optional(Nullable(Text)),
            tags: Type.Optional(Type.Array(Tag, { maxItems: 32 })),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: DeviceSchema, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const { owner } = request.body;
      if (owner !== undefined) {
        // A first owner is set here; another one only through a transfer, which deals with the data the device holds.
        const current = (await registry.get(request.params.id)).owner;
        if (current !== null && owner !== current) {
          throw new PlatformError('BULWARK_ERR_CONFLICT', `device ${request.params.id} is owned by ${current}: a new owner takes it through POST /api/v1/devices/${request.params.id}/transfer`, { details: { owner: current } });
        }
        if (owner !== null) await checkOwner(owner);
      }
      return registry.update(request.params.id, stripUndefined(request.body));
    },
  );

  const lifecycle = { suspend: 'Suspend a device: its session ends now and it cannot connect until resumed', resume: 'Resume a suspended device', decommission: 'Retire a device for good: its certificates are revoked and its session ends' } as const;
  for (const verb of ['suspend', 'resume'] as const) {
    app.post(
      `/api/v1/devices/:id/${verb}`,
      {
        config: { auth: { scope: 'devices:write' }, groupLimit: 'device', audit: `device.${verb}` },
        schema: { tags: ['devices'], summary: lifecycle[verb], security: bearer, params: IdParams, response: { 200: DeviceSchema, ...errorResponses } },
      },
      async (request) => {
        request.auditTarget = request.params.id;
        return verb === 'suspend' ? registry.suspend(request.params.id) : registry.resume(request.params.id);
      },
    );
  }
};
