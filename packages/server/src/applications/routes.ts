import { PlatformError } from '@bulwark/core';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { AccessService } from '../access/index.js';
import { IdParams, bearer, errorResponses } from '../http/index.js';
import type { ApplicationService } from './service.js';

const HOUR_MS = 3_600_000;

const SchemaGrantSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
    version: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
const ApplicationSchema = Type.Object({ id: Type.String(), name: Type.String(), schemas: Type.Array(SchemaGrantSchema), createdAt: Type.Integer() });
const CredentialSchema = Type.Object({
  id: Type.String(),
  applicationId: Type.String(),
  userKey: Type.String(),
  issuedAt: Type.Integer(),
  expiresAt: Type.Integer(),
  revokedAt: Type.Union([Type.Integer(), Type.Null()]),
});
const ConsumerSchema = Type.Object({ name: Type.String(), filter: Type.String(), schema: SchemaGrantSchema });

export interface ApplicationRouteDeps {
  readonly applications: ApplicationService;
  readonly access: AccessService;
}

/** Applications reading the telemetry stream, and their NATS credentials (docs/reference/stream.md). */
export const applicationRoutes: FastifyPluginAsyncTypebox<ApplicationRouteDeps> = async (app, { applications, access }) => {
  app.get(
    '/api/v1/applications',
    {
      config: { auth: { scope: 'applications:read' } },
      schema: { tags: ['applications'], summary: 'List applications (service accounts reading the telemetry stream)', security: bearer, response: { 200: Type.Array(ApplicationSchema), ...errorResponses } },
    },
    async () => applications.list(),
  );

  app.post(
    '/api/v1/applications',
    {
      config: { auth: { scope: 'applications:write' }, audit: 'application.create' },
      schema: {
        tags: ['applications'],
        security: bearer,
        summary: 'Create an application: a service account (scope schemas:read) that may read the listed schemas from the telemetry stream',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]*$' }),
            schemas: Type.Array(SchemaGrantSchema, { minItems: 1, maxItems: 32 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: ApplicationSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const created = await applications.create(request.body.name, request.body.schemas);
      request.auditTarget = created.id;
      request.auditDetails = { schemas: created.schemas };
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/api/v1/applications/:id',
    {
      config: { auth: { scope: 'applications:read' } },
      schema: {
        tags: ['applications'],
        summary: 'Show an application and the NATS credentials issued to it (public keys only)',
        security: bearer,
        params: IdParams,
        response: { 200: Type.Object({ application: ApplicationSchema, natsCredentials: Type.Array(CredentialSchema) }), ...errorResponses },
      },
    },
    async (request) => ({ application: await applications.get(request.params.id), natsCredentials: await applications.listCredentials(request.params.id) }),
  );

  app.post(
    '/api/v1/applications/:id/nats-credentials',
    {
      config: { auth: { scope: 'applications:write' }, audit: 'application.nats-credentials' },
      schema: {
        tags: ['applications'],
        security: bearer,
        params: IdParams,
        summary: "Issue a NATS credential (.creds file, shown once) that reads only the application's schemas from the telemetry stream; it expires after ttlHours (default 24)",
        body: Type.Optional(Type.Object({ ttlHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 720 })) }, { additionalProperties: false })),
        response: {
          201: Type.Object({
            creds: Type.String({ description: 'The .creds file: user JWT and seed. Shown only in this response' }),
            credential: CredentialSchema,
            inboxPrefix: Type.String(),
            stream: Type.String(),
            consumers: Type.Array(ConsumerSchema),
          }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const auth = request.auth;
      if (!auth) throw new PlatformError('BULWARK_ERR_UNAUTHENTICATED', 'send "Authorization: Bearer <access token>"');
      request.auditTarget = request.params.id;
      access.assertMayActOn(auth, await access.getPrincipal(request.params.id), 'issue credentials for');
      const ttlHours = request.body?.ttlHours;
      const issued = await applications.issueNatsCredentials(request.params.id, ttlHours === undefined ? undefined : ttlHours * HOUR_MS);
      request.auditDetails = { credentialId: issued.credential.id, userKey: issued.credential.userKey, expiresAt: issued.credential.expiresAt, consumers: issued.consumers.map((c) => c.filter) };
      return reply.code(201).send(issued);
    },
  );

  app.post(
    '/api/v1/applications/:id/nats-credentials/revoke',
    {
      config: { auth: { scope: 'applications:write' }, audit: 'application.nats-credentials.revoke' },
      schema: {
        tags: ['applications'],
        security: bearer,
        params: IdParams,
        summary: 'Revoke every live NATS credential of the application: the NATS servers close its connections and refuse those credentials',
        response: { 200: Type.Object({ revoked: Type.Array(CredentialSchema) }), ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const revoked = await applications.revokeNatsCredentials(request.params.id);
      request.auditDetails = { credentials: revoked.map((c) => c.id) };
      return { revoked };
    },
  );
};
