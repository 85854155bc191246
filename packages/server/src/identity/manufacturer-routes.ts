import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { IdParams, bearer, errorResponses } from '../http/index.js';
import type { CaRecord } from './identity.js';
import type { ManufacturerCas } from './manufacturers.js';
import type { IdentityService } from './service.js';

const Pem = Type.String({ minLength: 64, maxLength: 1_000_000 });
const Rule = Type.Object(
  {
    allowList: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 100_000 })),
    idPattern: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:=-]+$' }), { maxItems: 32 })),
  },
  { additionalProperties: false },
);
const CaSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  fingerprint: Type.String(),
  certificate: Type.String(),
  provisioning: Type.Union([Rule, Type.Null()]),
  hasCrl: Type.Boolean(),
  createdAt: Type.Integer(),
  disabledAt: Type.Union([Type.Integer(), Type.Null()]),
});
const view = (c: CaRecord) => ({
  id: c.id,
  name: c.name,
  fingerprint: c.fingerprint,
  certificate: c.certPem,
  provisioning: c.provisioning as never,
  hasCrl: c.crlPem !== null,
  createdAt: c.createdAt,
  disabledAt: c.disabledAt,
});

/** Registering manufacturer CAs for just-in-time provisioning. */
export const manufacturerRoutes: FastifyPluginAsyncTypebox<{ manufacturers: ManufacturerCas; identity: IdentityService }> = async (app, { manufacturers, identity }) => {
  app.get(
    '/api/v1/pki/manufacturer-cas',
    {
      config: { auth: { scope: 'devices:read' } },
      schema: { tags: ['pki'], summary: 'Registered manufacturer CAs', security: bearer, response: { 200: Type.Array(CaSchema), ...errorResponses } },
    },
    async () => (await manufacturers.list()).map(view),
  );

  app.post(
    '/api/v1/pki/manufacturer-cas',
    {
      config: { auth: { scope: 'devices:write' }, audit: 'pki.manufacturer-ca.register' },
      schema: {
        tags: ['pki'],
        security: bearer,
        summary: "Trust a manufacturer's root CA: devices with its certificates are provisioned on first connect when the rule allows their id. Its CRL is required.",
        body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }), certificate: Pem, crl: Pem, provisioning: Rule }, { additionalProperties: false }),
        response: { 201: CaSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { name, certificate, crl, provisioning } = request.body;
      const ca = await manufacturers.register({ name, certificatePem: certificate, crlPem: crl, provisioning });
      request.auditTarget = ca.id;
      return reply.code(201).send(view(ca));
    },
  );

  app.put(
    '/api/v1/pki/manufacturer-cas/:id/crl',
    {
      config: { auth: { scope: 'devices:write' }, audit: 'pki.manufacturer-ca.crl' },
      schema: {
        tags: ['pki'],
        summary: "Replace a manufacturer CA's CRL (new handshakes use it at once)",
        security: bearer,
        params: IdParams,
        body: Type.Object({ crl: Pem }, { additionalProperties: false }),
        response: { 200: CaSchema, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      request.auditDetails = { revoked: await identity.updateManufacturerCrl(request.params.id, request.body.crl) };
      return view((await manufacturers.list()).find((c) => c.id === request.params.id) as CaRecord);
    },
  );

  for (const verb of ['disable', 'enable'] as const) {
    app.post(
      `/api/v1/pki/manufacturer-cas/:id/${verb}`,
      {
        config: { auth: { scope: 'devices:write' }, audit: `pki.manufacturer-ca.${verb}` },
        schema: { tags: ['pki'], summary: verb === 'disable' ? 'Stop trusting a manufacturer CA (new handshakes fail at once)' : 'Trust a disabled manufacturer CA again', security: bearer, params: IdParams, response: { 200: CaSchema, ...errorResponses } },
      },
      async (request) => {
        request.auditTarget = request.params.id;
        return view(await manufacturers.setDisabled(request.params.id, verb === 'disable'));
      },
    );
  }
};
