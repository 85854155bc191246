import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/index.js';
import type { PrivacyService } from './service.js';

const Kind = Type.Union([Type.Literal('devices'), Type.Literal('owners'), Type.Literal('locations')], { description: 'devices (device ids), owners or locations' });
const Answer = Type.Object({ kind: Kind, value: Type.String(), pseudonym: Type.String() });
const tags = ['privacy'];

/** Pseudonyms for operators: compute one for a known identifier, or find the identifier behind one. Both audited. */
export const privacyRoutes: FastifyPluginAsyncTypebox<{ privacy: PrivacyService }> = async (app, { privacy }) => {
  app.post(
    '/api/v1/privacy/pseudonyms',
    {
      config: { auth: { scope: 'privacy:resolve' }, audit: 'privacy.pseudonym' },
      schema: {
        tags,
        security: bearer,
        summary: 'The pseudonym exports, webhooks and logs show for a device id, owner or location (privacy.pseudonymise), to find its lines',
        body: Type.Object({ kind: Kind, value: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
        response: { 200: Answer, ...errorResponses },
      },
    },
    async (request) => {
      const { kind, value } = request.body;
      const pseudonym = privacy.pseudonym(kind, value);
      request.auditTarget = pseudonym;
      request.auditDetails = { kind };
      return { kind, value, pseudonym };
    },
  );

  app.post(
    '/api/v1/privacy/resolve',
    {
      config: { auth: { scope: 'privacy:resolve' }, audit: 'privacy.resolve' },
      schema: {
        tags,
        security: bearer,
        summary: "The device id, owner or location behind a pseudonym, found by hashing the registry's devices (404 when none has it)",
        body: Type.Object({ pseudonym: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
        response: { 200: Answer, ...errorResponses },
      },
    },
    async (request) => {
      const { pseudonym } = request.body;
      request.auditTarget = pseudonym;
      const found = await privacy.resolve(pseudonym);
      request.auditDetails = { kind: found.kind };
      return { ...found, pseudonym };
    },
  );
};
