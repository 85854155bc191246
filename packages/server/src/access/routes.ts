import { type Clock, PlatformError } from '@bulwark/core';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { IdParams, bearer, errorResponses } from '../http/index.js';
import { type AccessService, RevokedCredentialError } from './service.js';
import { type Grant, ROLE_SCOPES, type Scope, ROLES, SCOPES, covers, effectiveScopes, hasScope } from './scopes.js';
import { GROUP_ID_PATTERN } from '../registry/index.js';
import { STREAM_TICKET_ROUTES } from './stream-tickets.js';
import { type AuthAttempt, Throttle } from './throttle.js';

const DAY_MS = 86_400_000;

const GrantSchema = Type.Enum([...SCOPES, '*']);
const PrincipalSchema = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('user'), Type.Literal('service')]),
  name: Type.String(),
  role: Type.Union([Type.String(), Type.Null()]),
  scopes: Type.Array(Type.String()),
  deviceGroups: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'the device groups it is limited to; null: the whole fleet' }),
  createdAt: Type.Integer(),
  disabledAt: Type.Union([Type.Integer(), Type.Null()]),
});
const DeviceGroups = Type.Array(Type.String({ minLength: 1, maxLength: 64, pattern: GROUP_ID_PATTERN }), {
  minItems: 1,
  maxItems: 32,
  description: 'limit to the devices of these groups: every device route answers 404 for others, lists, live streams and exports leave them out, and routes that reach the whole fleet refuse (403)',
});
const KeySchema = Type.Object({
  id: Type.String(),
  principalId: Type.String(),
  name: Type.String(),
  scopes: Type.Union([Type.Array(Type.String()), Type.Null()]),
  createdAt: Type.Integer(),
  expiresAt: Type.Union([Type.Integer(), Type.Null()]),
  revokedAt: Type.Union([Type.Integer(), Type.Null()]),
  lastUsedAt: Type.Union([Type.Integer(), Type.Null()]),
});
const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]*$' });

export interface AccessRouteDeps {
  readonly access: AccessService;
  readonly throttle: Throttle;
  readonly clock: Clock;
  readonly onAuthFailure: (reason: string, lockedKind?: 'address' | 'address_key') => void;
  /** Which of these device group ids exist. */
  readonly groups: { existing(ids: readonly string[]): Promise<string[]> };
  /** A refused exchange of a revoked or expired key, or of a disabled principal's key, whose secret was right. */
}

/** Token exchange, whoami, users and service accounts, API keys. */
export const accessRoutes: FastifyPluginAsyncTypebox<AccessRouteDeps> = async (app, { access, throttle, clock, onAuthFailure, groups }) => {
  const checkGroups = async (ids: readonly string[]) => {
    const found = new Set(await groups.existing(ids));
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length > 0) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no such device groups: ${missing.join(', ')}`, { details: { missing } });
  };
  app.post(
    '/api/v1/auth/token',
    {
      config: { auth: { public: true }, audit: 'auth.token' },
      schema: {
        tags: ['auth'],
        summary: 'Exchange an API key for a short-lived access token',
        body: Type.Object({ key: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ accessToken: Type.String(), tokenType: Type.Literal('Bearer'), expiresAt: Type.Integer(), expiresIn: Type.Integer() }), ...errorResponses },
      },
    },
    async (request) => {
      const keyId = access.keyIdOf(request.body.key);
      request.auditTarget = keyId ?? 'malformed-key';
      // Per address and per (address, key id), never per key id alone: the id is in every
      // token, so a per-key lock would let anyone lock the key's owner out.
      const subjects = [Throttle.address(request.ip), ...(keyId ? [Throttle.addressKey(request.ip, keyId)] : [])];
      // Failures lock; attempts under way only hold back more attempts (429 RATE_LIMITED, no
      // lock), so parallel exchanges of a good key never lock out the client making them.
      let attempt: AuthAttempt;
      try {
        attempt = await throttle.begin(subjects);
      } catch (err) {
        if (err instanceof PlatformError && err.code === 'BULWARK_ERR_RATE_LIMITED') onAuthFailure('attempts_in_flight');
        throw err;
      }
      let failed = false;
      try {
        const issued = await access.exchange(request.body.key);
        request.auditActor = issued.principal.id;
        return { accessToken: issued.accessToken, tokenType: 'Bearer' as const, expiresAt: issued.expiresAt, expiresIn: Math.round((issued.expiresAt - clock.now()) / 1000) };
      } catch (err) {
        if (err instanceof RevokedCredentialError) request.auditRevoked = err.principalId;
        failed = err instanceof PlatformError && err.code === 'BULWARK_ERR_INVALID_CREDENTIALS';
        if (failed) onAuthFailure('invalid_key');
        throw err;
      } finally {
        // Before the answer goes out: the next attempt of a sequential client sees this failure.
        for (const subject of await attempt.end(failed)) onAuthFailure('locked_out', Throttle.kindOf(subject));
      }
    },
  );

  app.get(
    '/api/v1/auth/whoami',
    {
      config: { auth: { authenticated: true }, groupLimit: 'none' },
      schema: {
        tags: ['auth'],
        summary: 'The caller, its effective scopes and token expiry',
        security: bearer,
        response: { 200: Type.Object({ principal: PrincipalSchema, keyId: Type.String(), scopes: Type.Array(Type.String()), tokenExpiresAt: Type.Integer() }), ...errorResponses },
      },
    },
    async (request) => {
      const auth = mustAuth(request.auth);
      return { principal: auth.principal, keyId: auth.keyId, scopes: [...auth.scopes], tokenExpiresAt: auth.tokenExpiresAt };
    },
  );

  app.post(
    '/api/v1/auth/stream-ticket',
    {
      config: { auth: { authenticated: true }, groupLimit: 'none', audit: 'auth.stream-ticket' },
      schema: {
        tags: ['auth'],
        security: bearer,
        summary: 'A single-use ticket, valid 30 s, that opens one live stream (SSE or WebSocket) as the caller, passed as ?ticket=; browsers cannot send a bearer token there',
        response: { 200: Type.Object({ ticket: Type.String(), expiresAt: Type.Integer(), expiresIn: Type.Integer(), routes: Type.Array(Type.String()) }), ...errorResponses },
      },
    },
    async (request) => {
      const token = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
      if (token === undefined) throw new PlatformError('BULWARK_ERR_UNAUTHENTICATED', 'send "Authorization: Bearer <access token>"');
      const { ticket, expiresAt } = await access.issueStreamTicket(token);
      request.auditTarget = mustAuth(request.auth).principal.id;
      return { ticket, expiresAt, expiresIn: Math.round((expiresAt - clock.now()) / 1000), routes: [...STREAM_TICKET_ROUTES] };
    },
  );

  app.get(
    '/api/v1/users',
    {
      config: { auth: { scope: 'users:read' } },
      schema: { tags: ['users'], summary: 'List users and service accounts', security: bearer, response: { 200: Type.Array(PrincipalSchema), ...errorResponses } },
    },
    async () => access.listPrincipals(),
  );

  app.post(
    '/api/v1/users',
    {
      config: { auth: { scope: 'users:write' }, audit: 'user.create' },
      schema: {
        tags: ['users'],
        summary: 'Create a user (with a role) or a service account (with scopes)',
        security: bearer,
        body: Type.Object(
          {
            name: Name,
            kind: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('service')])),
            role: Type.Optional(Type.Enum([...ROLES])),
            scopes: Type.Optional(Type.Array(GrantSchema, { minItems: 1, maxItems: SCOPES.length + 1 })),
            deviceGroups: Type.Optional(DeviceGroups),
          },
          { additionalProperties: false },
        ),
        response: { 201: PrincipalSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { name, kind = 'user', role, scopes, deviceGroups } = request.body;
      if (deviceGroups) await checkGroups(deviceGroups);
      const granting = role ? ROLE_SCOPES[role] : ((scopes ?? []) as Grant[]);
      if (!covers(mustAuth(request.auth).scopes, granting)) {
        throw new PlatformError('BULWARK_ERR_FORBIDDEN', 'you cannot create a user or service account with scopes you do not hold yourself');
      }
      const principal = await access.createPrincipal({ kind, name, ...(role ? { role } : {}), ...(scopes ? { scopes: scopes } : {}), ...(deviceGroups ? { deviceGroups } : {}) });
      request.auditTarget = principal.id;
      return reply.code(201).send(principal);
    },
  );

  app.get(
    '/api/v1/users/:id',
    {
      config: { auth: { scope: 'users:read' } },
      schema: { tags: ['users'], summary: 'Show a user or service account', security: bearer, params: IdParams, response: { 200: PrincipalSchema, ...errorResponses } },
    },
    async (request) => access.getPrincipal(request.params.id),
  );

  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.post(
      `/api/v1/users/:id/${verb}`,
      {
        config: { auth: { scope: 'users:write' }, audit: `user.${verb}`, actsOn: 'principal' },
        schema: {
          tags: ['users'],
          summary: verb === 'disable' ? 'Disable a user or service account (its tokens stop working at once)' : 'Re-enable a disabled user or service account',
          security: bearer,
          params: IdParams,
          response: { 200: PrincipalSchema, ...errorResponses },
        },
      },
      async (request) => {
        request.auditTarget = request.params.id;
        const auth = mustAuth(request.auth);
        if (disabled && request.params.id === auth.principal.id) {
          throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'you cannot disable yourself');
        }
        access.assertMayActOn(auth, await access.getPrincipal(request.params.id), verb);
        return access.setDisabled(request.params.id, disabled);
      },
    );
  }

  app.put(
    '/api/v1/users/:id/device-groups',
    {
      config: { auth: { scope: 'users:write' }, audit: 'user.device-groups', actsOn: 'principal' },
      schema: {
        tags: ['users'],
        security: bearer,
        params: IdParams,
        response: { 200: PrincipalSchema, ...errorResponses },
        summary: 'Limit a user or service account to device groups, or (null) give it the whole fleet again; applies to its tokens at once',
        body: Type.Object({ deviceGroups: Type.Union([DeviceGroups, Type.Null()]) }, { additionalProperties: false }),
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const auth = mustAuth(request.auth);
      // Limiting yourself can lock you out of what you manage; lifting your own limit would be a grant to yourself.
      if (request.params.id === auth.principal.id) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'you cannot change your own device groups; another user with users:write can');
      access.assertMayActOn(auth, await access.getPrincipal(request.params.id), 'change the device groups of');
      const { deviceGroups } = request.body;
      if (deviceGroups) await checkGroups(deviceGroups);
      request.auditDetails = { deviceGroups };
      return access.setDeviceGroups(request.params.id, deviceGroups);
    },
  );

  app.get(
    '/api/v1/keys',
    {
      config: { auth: { scope: 'keys:self' } },
      schema: {
        tags: ['keys'],
        summary: "List API keys: the caller's own, another principal's (keys:read), or all (keys:read, all=true)",
        security: bearer,
        querystring: Type.Object({ principalId: Type.Optional(Type.String({ maxLength: 128 })), all: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: { 200: Type.Array(KeySchema), ...errorResponses },
      },
    },
    async (request) => {
      const auth = mustAuth(request.auth);
      const target = request.query.principalId ?? auth.principal.id;
      if (request.query.all || target !== auth.principal.id) requireScope(auth.scopes, 'keys:read');
      return access.listKeys(request.query.all ? undefined : target);
    },
  );

  app.post(
    '/api/v1/keys',
    {
      config: { auth: { scope: 'keys:self' }, audit: 'key.create', actsOn: 'principal' },
      schema: {
        tags: ['keys'],
        summary: 'Create an API key for yourself or (keys:write) for another principal; the key text is returned once',
        security: bearer,
        body: Type.Object(
          {
            name: Name,
            principalId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
            scopes: Type.Optional(Type.Array(GrantSchema, { minItems: 1, maxItems: SCOPES.length + 1 })),
            expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ key: Type.String({ description: 'Shown only in this response' }), apiKey: KeySchema }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const auth = mustAuth(request.auth);
      const principalId = request.body.principalId ?? auth.principal.id;
      if (principalId !== auth.principal.id) requireScope(auth.scopes, 'keys:write');
      const { name, scopes, expiresInDays } = request.body;
      const target = await access.getPrincipal(principalId);
      access.assertMayActOn(auth, target, 'create a key for');
      if (!covers(auth.scopes, effectiveScopes(target.scopes, (scopes as Grant[] | undefined) ?? null))) {
        throw new PlatformError('BULWARK_ERR_FORBIDDEN', 'you cannot create a key with scopes you do not hold yourself');
      }
      const { key, text } = await access.createKey(principalId, {
        name,
        ...(scopes ? { scopes: scopes } : {}),
        ...(expiresInDays ? { expiresAtMs: clock.now() + expiresInDays * DAY_MS } : {}),
      });
      request.auditTarget = key.id;
      request.auditDetails = { principalId, scopes: key.scopes };
      return reply.code(201).send({ key: text, apiKey: key });
    },
  );

  app.post(
    '/api/v1/keys/:id/revoke',
    {
      config: { auth: { scope: 'keys:self' }, audit: 'key.revoke', actsOn: 'key' },
      schema: { tags: ['keys'], summary: 'Revoke an API key; tokens issued from it stop working at once', security: bearer, params: IdParams, response: { 200: KeySchema, ...errorResponses } },
    },
    async (request) => {
      const auth = mustAuth(request.auth);
      request.auditTarget = request.params.id;
      const key = await access.getKey(request.params.id).catch((err: unknown) => {
        // Do not reveal whether another principal's key exists to a caller who may not see it.
        if (!hasScope(auth.scopes, 'keys:write')) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no API key ${request.params.id}`);
        throw err;
      });
      if (key.principalId !== auth.principal.id) {
        if (!hasScope(auth.scopes, 'keys:write')) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no API key ${request.params.id}`);
        access.assertMayActOn(auth, await access.getPrincipal(key.principalId), 'revoke a key of');
      }
      return access.revokeKey(key.id);
    },
  );
};

function mustAuth<T>(auth: T | undefined): T {
  if (!auth) throw new PlatformError('BULWARK_ERR_UNAUTHENTICATED', 'send "Authorization: Bearer <access token>"');
  return auth;
}

function requireScope(scopes: readonly Grant[], scope: Scope): void {
  if (!hasScope(scopes, scope)) throw new PlatformError('BULWARK_ERR_FORBIDDEN', `this call needs the ${scope} scope`, { details: { requiredScope: scope } });
}
