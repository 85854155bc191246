import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import { IdParams, bearer, errorResponses } from '../http/index.js';
import { DeviceSchema } from '../registry/index.js';
import type { EndOfLifeService } from './end-of-life.js';
import type { ReceiptSigner } from './receipts.js';

const Policy = (description: string) => Type.Union([Type.Literal('keep'), Type.Literal('erase'), Type.Literal('pseudonymise')], { description });
const DATA_KINDS = ['telemetry', 'rollups', 'feed', 'deadLetters', 'health', 'events', 'twin', 'commands', 'alerts', 'alertNotifications', 'webhookDeadLetterReadings', 'claimTokens', 'streamMessages', 'logs'] as const;
const DataCountsSchema = Type.Object(Object.fromEntries(DATA_KINDS.map((k) => [k, Type.Integer()])) as Record<(typeof DATA_KINDS)[number], ReturnType<typeof Type.Integer>>);
export const ReceiptSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  deviceId: Type.String(),
  at: Type.Integer(),
  by: Type.String(),
  policy: Type.String(),
  revoked: Type.Array(Type.String()),
  cancelled: Type.Object({ jobEntries: Type.Integer(), commands: Type.Integer() }),
  data: DataCountsSchema,
  pseudonym: Type.Union([Type.String(), Type.Null()]),
  transfer: Type.Union([Type.Object({ from: Type.Union([Type.String(), Type.Null()]), to: Type.String(), claimTokenExpiresAt: Type.Integer() }), Type.Null()]),
  keyId: Type.String(),
  signature: Type.String({ description: 'Ed25519 over the canonical JSON of the other fields (keys sorted), base64url; check with GET /api/v1/system/receipt-key' }),
});

const by = (r: FastifyRequest) => r.auth?.principal.id ?? 'unknown';

/** End of life: decommission with a data policy, erasure requests, transfer to a new owner; each answers with its signed receipt. */
export const lifecycleRoutes: FastifyPluginAsyncTypebox<{ endOfLife: EndOfLifeService; signer: ReceiptSigner }> = async (app, { endOfLife, signer }) => {
  app.post(
    '/api/v1/devices/:id/decommission',
    {
      config: { auth: { scope: 'devices:write' }, groupLimit: 'device', audit: 'device.decommission' },
      schema: {
        tags: ['devices'],
        security: bearer,
        params: IdParams,
        summary:
          'Retire a device for good, as one operation: every certificate revoked, its session ended, its jobs and commands cancelled, the data policy applied to everything held about it (keep, erase, or pseudonymise the readings and erase the rest); answers with the signed receipt',
        body: Type.Optional(Type.Object({ data: Type.Optional(Policy('what happens to its data (default keep)')) }, { additionalProperties: false })),
        response: { 200: Type.Intersect([DeviceSchema, Type.Object({ receipt: ReceiptSchema })]), ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const { device, receipt } = await endOfLife.decommission(request.params.id, request.body?.data ?? 'keep', by(request));
      request.auditDetails = { receiptId: receipt.id, policy: receipt.policy };
      return { ...device, receipt };
    },
  );

  app.post(
    '/api/v1/devices/:id/erase',
    {
      config: { auth: { scope: 'devices:write' }, groupLimit: 'device', audit: 'device.erase' },
      schema: {
        tags: ['devices'],
        security: bearer,
        params: IdParams,
        summary: 'Erasure request: erase (or pseudonymise the readings of) everything held about a device, which stays in service; answers with the signed receipt',
        body: Type.Object({ data: Policy('erase or pseudonymise') }, { additionalProperties: false }),
        response: { 200: Type.Object({ receipt: ReceiptSchema }), ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const { receipt } = await endOfLife.erase(request.params.id, request.body.data, by(request));
      request.auditDetails = { receiptId: receipt.id, policy: receipt.policy };
      return { receipt };
    },
  );

  app.post(
    '/api/v1/devices/:id/transfer',
    {
      config: { auth: { scope: 'devices:write' }, groupLimit: 'device', audit: 'device.transfer' },
      schema: {
        tags: ['devices'],
        security: bearer,
        params: IdParams,
        summary:
          "Resale: hand a device (also a decommissioned one) to a new owner. Its certificates are revoked, the previous owner's data erased or pseudonymised, its static groups left; it starts again as manufactured with a new claim token (in this answer only) and gets a new certificate when it enrols",
        body: Type.Object(
          {
            owner: Type.String({ minLength: 1, maxLength: 128, description: 'the new owner: usr_…, svc_… or group:<id>' }),
            data: Policy("what happens to the previous owner's data: erase or pseudonymise (keep is refused: the new owner would see it)"),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ device: DeviceSchema, receipt: ReceiptSchema, claimToken: Type.Object({ token: Type.String(), expiresAt: Type.Integer() }) }), ...errorResponses },
      },
    },
    async (request) => {
      request.auditTarget = request.params.id;
      const { device, receipt, claimToken } = await endOfLife.transfer(request.params.id, request.body.owner, request.body.data, by(request));
      request.auditDetails = { receiptId: receipt.id, policy: receipt.policy, owner: request.body.owner };
      return { device, receipt, claimToken };
    },
  );

  app.get(
    '/api/v1/system/receipt-key',
    {
      config: { auth: { authenticated: true }, groupLimit: 'none' },
      schema: {
        tags: ['system'],
        security: bearer,
        summary: 'The public key that signs end-of-life receipts (Ed25519, PEM), to check a receipt without the platform',
        response: { 200: Type.Object({ keyId: Type.String(), publicKeyPem: Type.String() }), ...errorResponses },
      },
    },
    async () => ({ keyId: signer.keyId, publicKeyPem: signer.publicKeyPem }),
  );
};
