import { PlatformError } from '@bulwark/core';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Throttle } from '../access/index.js';
import { IdParams, bearer, errorResponses } from '../http/index.js';
import { NewDeviceSchema } from '../registry/index.js';
import type { RegistryService } from '../registry/index.js';
import type { IdentityService } from './service.js';

const Csr = Type.String({ minLength: 64, maxLength: 8192, description: 'PEM PKCS#10 request for an ECDSA P-256 key made on the device' });
const Issued = Type.Object({ deviceId: Type.String(), serial: Type.String(), certificate: Type.String(), caChain: Type.String(), notAfter: Type.Integer() });
const CertificateSchema = Type.Object({
  serial: Type.String(),
  deviceId: Type.String(),
  caId: Type.String(),
  fingerprint: Type.String(),
  notBefore: Type.Integer(),
  notAfter: Type.Integer(),
  createdAt: Type.Integer(),
  firstUsedAt: Type.Union([Type.Integer(), Type.Null()]),
  supersededAt: Type.Union([Type.Integer(), Type.Null()]),
  revokedAt: Type.Union([Type.Integer(), Type.Null()]),
  revocationReason: Type.Union([Type.String(), Type.Null()]),
});
const Reason = Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9 ._:-]+$' })) }, { additionalProperties: false });
const SerialParams = Type.Object({ serial: Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9A-Fa-f]+$' }) }, { additionalProperties: false });
const toIssued = (i: { deviceId: string; serial: string; certificatePem: string; caChainPem: string; notAfter: number }) => ({ deviceId: i.deviceId, serial: i.serial, certificate: i.certificatePem, caChain: i.caChainPem, notAfter: i.notAfter });

export interface IdentityRouteDeps {
  readonly identity: IdentityService;
  readonly registry: RegistryService;
  readonly throttle: Throttle;
  readonly onEnrollFailure: () => void;
  /** Checks a device owner (a principal or a group binding) before anything is written. */
  readonly checkOwner: (owner: string) => Promise<void>;
}

/** Enrollment, factory onboarding, certificates, revocation and the public PKI files. */
export const identityRoutes: FastifyPluginAsyncTypebox<IdentityRouteDeps> = async (app, { identity, registry, throttle, onEnrollFailure, checkOwner }) => {
  app.post(
    '/api/v1/devices/:id/claim-tokens',
    {
      config: { auth: { scope: 'devices:write' }, groupLimit: 'device', audit: 'device.claim-token' },
      schema: {
        tags: ['enrollment'],
        summary: 'Create a one-time claim token a device uses to enroll (shown once)',
        security: bearer,
        params: IdParams,
        body: Type.Optional(Type.Object({ ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 31_536_000 })) }, { additionalProperties: false })),
        response: { 201: Type.Object({ deviceId: Type.String(), token: Type.String(), expiresAt: Type.Integer() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      request.auditTarget = request.params.id;
      const ttl = request.body?.ttlSeconds;
      const [issued] = await identity.createClaimTokens([request.params.id], { createdBy: request.auth?.principal.id ?? 'unknown', ...(ttl ? { ttlMs: ttl * 1000 } : {}) });
      if (!issued) throw new PlatformError('BULWARK_ERR_INTERNAL', 'no claim token was created');
      return reply.code(201).send(issued);
    },
  );

  app.post(
    '/api/v1/enroll',
    {
      config: { auth: { public: true }, audit: 'device.enroll' },
      schema: {
        tags: ['enrollment'],
        summary: 'A device trades its claim token and a CSR for its certificate (the private key never leaves the device)',
        body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 256 }), csr: Csr }, { additionalProperties: false }),
        response: { 201: Issued, ...errorResponses },
      },
    },
    async (request, reply) => {
      const tokenId = identity.claimTokenIdOf(request.body.token);
      request.auditTarget = tokenId ?? 'malformed-token';
      await throttle.assertNotLocked(`addr:${request.ip}`);
      try {
        const issued = await identity.enroll(request.body.token, request.body.csr);
        request.auditActor = `device:${issued.deviceId}`;
        request.auditTarget = issued.deviceId;
        return reply.code(201).send(toIssued(issued));
      } catch (err) {
        if (err instanceof PlatformError && err.code === 'BULWARK_ERR_CLAIM_TOKEN_INVALID') {
          onEnrollFailure();
          await throttle.recordFailure(`addr:${request.ip}`);
        }
        throw err;
      }
    },
  );

  app.post(
    '/api/v1/devices/batch',
    {
      config: { auth: { scope: 'devices:write' }, audit: 'device.batch-onboard' },
      schema: {
        tags: ['enrollment'],
        summary: 'Factory onboarding: register many devices at once and return a claim token, or a certificate for each that brings a CSR',
        security: bearer,
        body: Type.Object(
          {
            batchId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' })),
            ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 31_536_000 })),
            devices: Type.Array(Type.Object({ ...NewDeviceSchema.properties, csr: Type.Optional(Csr) }, { additionalProperties: false }), { minItems: 1, maxItems: 5000 }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            batchId: Type.Union([Type.String(), Type.Null()]),
            devices: Type.Array(Type.Object({ id: Type.String(), token: Type.Optional(Type.String()), expiresAt: Type.Optional(Type.Integer()), certificate: Type.Optional(Type.String()), serial: Type.Optional(Type.String()) })),
          }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { batchId, ttlSeconds, devices } = request.body;
      request.auditTarget = batchId ?? `${devices.length} devices`;
      // Every CSR is checked before anything is written, so a bad one leaves no half batch behind.
      for (const d of devices) if (d.csr !== undefined) await identity.checkCsr(d.csr);
      for (const owner of new Set(devices.flatMap((d) => (d.owner === undefined ? [] : [d.owner])))) await checkOwner(owner);
      await registry.createMany(devices.map(({ csr: _csr, ...d }) => Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined)) as typeof d));
      const withCsr = devices.filter((d) => d.csr !== undefined);
      const tokens = await identity.createClaimTokens(
        devices.filter((d) => d.csr === undefined).map((d) => d.id),
        {
          createdBy: request.auth?.principal.id ?? 'unknown',
          ...(batchId ? { batchId } : {}),
          ...(ttlSeconds ? { ttlMs: ttlSeconds * 1000 } : {}),
        },
      );
      const byId = new Map<string, { id: string; token?: string; expiresAt?: number; certificate?: string; serial?: string }>();
      for (const t of tokens) byId.set(t.deviceId, { id: t.deviceId, token: t.token, expiresAt: t.expiresAt });
      for (const d of withCsr) {
        const issued = await identity.issueFromCsr(d.id, d.csr as string);
        byId.set(d.id, { id: d.id, certificate: issued.certificatePem, serial: issued.serial });
      }
      return reply.code(201).send({ batchId: batchId ?? null, devices: devices.map((d) => byId.get(d.id) ?? { id: d.id }) });
    },
  );

  app.get(
    '/api/v1/devices/:id/certificates',
    {
      config: { auth: { scope: 'devices:read' }, groupLimit: 'device' },
      schema: { tags: ['certificates'], summary: "A device's certificates, oldest first", security: bearer, params: IdParams, response: { 200: Type.Array(CertificateSchema), ...errorResponses } },
    },
    async (request) => {
      await registry.get(request.params.id);
      return (await identity.listCertificates(request.params.id)).map(({ pem: _pem, ...c }) => c);
    },
  );

  app.post(
    '/api/v1/devices/:id/certificates',
    {
      config: { auth: { scope: 'devices:write' }, groupLimit: 'device', audit: 'certificate.issue' },
      schema: {
        tags: ['certificates'],
        summary: 'Operator rotation: certify a new CSR for the device; older certificates retire when the new one is first used',
        security: bearer,
        params: IdParams,
        body: Type.Object({ csr: Csr }, { additionalProperties: false }),
        response: { 201: Issued, ...errorResponses },
      },
    },
    async (request, reply) => {
      request.auditTarget = request.params.id;
      return reply.code(201).send(toIssued(await identity.reissue(request.params.id, request.body.csr)));
    },
  );

  app.post(
    '/api/v1/devices/:id/revoke',
    {
      config: { auth: { scope: 'devices:write' }, groupLimit: 'device', audit: 'device.revoke' },
      schema: {
        tags: ['certificates'],
        summary: 'Revoke every certificate of a device: live sessions end now, new handshakes fail, the CRL lists them',
        security: bearer,
        params: IdParams,
        body: Type.Optional(Reason),
        response: { 200: Type.Object({ deviceId: Type.String(), revoked: Type.Integer() }), ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      return { deviceId: request.params.id, revoked: await identity.revokeDevice(request.params.id, request.body?.reason ?? 'revoked by operator') };
    },
  );

  app.get(
    '/api/v1/certificates/expiring',
    {
      config: { auth: { scope: 'devices:read' } },
      schema: {
        tags: ['certificates'],
        security: bearer,
        summary: 'Devices whose newest live certificate ends within the given days, or has ended, soonest first (decommissioned devices left out)',
        querystring: Type.Object(
          {
            days: Type.Optional(Type.Integer({ minimum: 0, maximum: 3650, default: 30, description: 'how far ahead, in days' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(Type.Intersect([CertificateSchema, Type.Object({ expired: Type.Boolean(), msLeft: Type.Integer({ description: 'until its end; negative once ended' }) })])), ...errorResponses },
      },
    },
    async (request) => {
      const { at, certificates } = await identity.expiring((request.query.days ?? 30) * 86_400_000, request.query.limit ?? 1000);
      return certificates.map(({ pem: _pem, ...c }) => ({ ...c, expired: c.notAfter <= at, msLeft: c.notAfter - at }));
    },
  );

  app.post(
    '/api/v1/certificates/:serial/revoke',
    {
      config: { auth: { scope: 'devices:write' }, audit: 'certificate.revoke' },
      schema: { tags: ['certificates'], summary: 'Revoke one certificate', security: bearer, params: SerialParams, body: Type.Optional(Reason), response: { 200: CertificateSchema, ...errorResponses } },
    },
    async (request) => {
      request.auditTarget = request.params.serial;
      const { pem: _pem, ...cert } = await identity.revokeCertificate(request.params.serial, request.body?.reason ?? 'revoked by operator');
      return cert;
    },
  );

  app.get(
    '/api/v1/pki/ca.pem',
    {
      config: { auth: { public: true } },
      schema: { tags: ['pki'], summary: 'The device CA chain (root, then issuing), PEM' },
    },
    async (_request, reply) => reply.type('application/x-pem-file').send(identity.authority.chainPem as never),
  );

  app.get(
    '/api/v1/pki/crl.pem',
    {
      config: { auth: { public: true } },
      schema: { tags: ['pki'], summary: 'The issuing CA certificate revocation list, PEM; re-signed on every revocation' },
    },
    async (_request, reply) =>
      reply
        .type('application/x-pem-file')
        .header('cache-control', 'no-cache')
        .send(identity.crlPem.issuing as never),
  );

  app.get(
    '/api/v1/pki/root-crl.pem',
    {
      config: { auth: { public: true } },
      schema: { tags: ['pki'], summary: 'The root CA certificate revocation list, PEM' },
    },
    async (_request, reply) =>
      reply
        .type('application/x-pem-file')
        .header('cache-control', 'no-cache')
        .send(identity.crlPem.root as never),
  );
};
