import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/schemas.js';
import type { SecretVault } from './vault.js';

export const secretsRoutes: FastifyPluginAsyncTypebox<{ vault: SecretVault }> = async (app, { vault }) => {
  app.post('/api/v1/system/master-key/rotate', {
    config: { auth: { scope: 'secrets:rotate' }, audit: 'secrets.rotate-master-key' },
    schema: {
      tags: ['system'], summary: 'Replace the master key and re-wrap every data key, without downtime', security: bearer,
      response: { 200: Type.Object({ previousMasterKeyId: Type.String(), masterKeyId: Type.String(), dataKeysRewrapped: Type.Integer() }), ...errorResponses },
    },
  }, async (request) => {
    const report = await vault.rotateMasterKey();
    request.auditTarget = report.masterKeyId;
    return report;
  });

  app.get('/api/v1/system/master-key', {
    config: { auth: { scope: 'secrets:rotate' } },
    schema: {
      tags: ['system'], summary: 'The fingerprint of the master key in use (never the key)', security: bearer,
      response: { 200: Type.Object({ masterKeyId: Type.String(), secrets: Type.Integer() }), ...errorResponses },
    },
  }, async () => ({ masterKeyId: vault.masterKeyId, secrets: (await vault.listNames()).length }));
};
