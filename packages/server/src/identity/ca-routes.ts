import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { PlatformError } from '@bulwark/core';
import Type from 'typebox';
import { IdParams, bearer, errorResponses } from '../http/index.js';
import type { IssuingCaView } from './issuing-cas.js';
import type { IdentityService } from './service.js';

const IssuingCaSchema = Type.Object({
  id: Type.String(),
  name: Type.String({ description: 'subject name' }),
  fingerprint: Type.String({ description: 'SHA-256 of the DER certificate, hex' }),
  state: Type.Enum(['active', 'previous', 'retired'], { description: 'active: signs new device certificates; previous: still trusted for the certificates it issued; retired: trusted no more' }),
  liveCertificates: Type.Integer({ description: 'device certificates from it that still work (neither revoked, nor ended, nor superseded past the rotation overlap)' }),
  notBefore: Type.Integer(),
  notAfter: Type.Integer(),
  createdAt: Type.Integer(),
  retiredAt: Type.Union([Type.Integer(), Type.Null()]),
  certificate: Type.String({ description: 'PEM' }),
});
const view = ({ certificatePem, ...c }: IssuingCaView) => ({ ...c, certificate: certificatePem });

/** The platform's issuing CAs: list, rollover, retirement, and each one's CRL. */
export const caRoutes: FastifyPluginAsyncTypebox<{ identity: IdentityService }> = async (app, { identity }) => {
  const cas = identity.issuingCas;

  app.get(
    '/api/v1/pki/issuing-cas',
    {
      config: { auth: { scope: 'devices:read' } },
      schema: {
        tags: ['pki'],
        security: bearer,
        response: { 200: Type.Array(IssuingCaSchema), ...errorResponses },
        summary: 'The issuing CAs of the device CA, the active one first: state, how many device certificates from each still work, validity',
      },
    },
    async () => (await cas.list()).map(view),
  );

  app.post(
    '/api/v1/pki/issuing-ca/rollover',
    {
      config: { auth: { scope: 'pki:write' }, audit: 'pki.issuing-ca.rollover' },
      schema: {
        tags: ['pki'],
        security: bearer,
        summary:
          'Issuing-CA rollover: a new issuing CA under the same root signs every new device certificate from now on; the previous one stays trusted until its last certificate has ended or been rotated (then it is retired at the next CRL re-signing). No session is dropped.',
        response: { 201: Type.Object({ active: IssuingCaSchema, previous: Type.Array(IssuingCaSchema) }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { active, previous } = await cas.rollover();
      request.auditTarget = active.id;
      request.auditDetails = { previous: previous.map((c) => ({ id: c.id, liveCertificates: c.liveCertificates })) };
      return reply.code(201).send({ active: view(active), previous: previous.map(view) });
    },
  );

  app.post(
    '/api/v1/pki/issuing-cas/:id/retire',
    {
      config: { auth: { scope: 'pki:write' }, audit: 'pki.issuing-ca.retire' },
      schema: {
        tags: ['pki'],
        security: bearer,
        params: IdParams,
        summary: 'Stop trusting a previous issuing CA: its certificates are refused at the handshake, sessions using them end, the root CRL lists it. Refused (409) while certificates from it still work, unless force is true.',
        body: Type.Optional(Type.Object({ force: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
        response: { 200: IssuingCaSchema, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const force = request.body?.force === true;
      request.auditDetails = { force };
      return view(await cas.retire(request.params.id, force));
    },
  );

  app.get(
    '/api/v1/pki/issuing-cas/:id/crl.pem',
    {
      config: { auth: { public: true } },
      schema: { tags: ['pki'], params: IdParams, summary: "One trusted issuing CA's certificate revocation list, PEM (/api/v1/pki/crl.pem holds them all, the active CA's first)" },
    },
    async (request, reply) => {
      const pem = identity.crlPem.byCa.get(request.params.id);
      if (pem === undefined) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no trusted issuing CA ${request.params.id} (a retired one is listed on /api/v1/pki/root-crl.pem)`);
      return reply.type('application/x-pem-file').header('cache-control', 'no-cache').send(pem);
    },
  );
};
