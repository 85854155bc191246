import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/schemas.js';
import type { SecretVault } from './vault.js';

export const secretsRoutes: FastifyPluginAsyncTypebox<{ vault: SecretVault }> = async (app, { vault }) => {
  app.post('/api/v1/system/master-key/rotate', {
    config: { auth: { scope: 'secrets:rotate' }, audit: 'secrets.rotate-master-key' },
    schema: {
      tags: ['system'], security: bearer,
      summary: 'Re-wrap every data key under a new master key, without downtime: a new generated key file, or BULWARK_MASTER_KEY_NEXT (idempotent; refused while a live node of the cluster does not hold that key)',
      response: {
        200: Type.Object({
          previousMasterKeyId: Type.String(), masterKeyId: Type.String(), dataKeysRewrapped: Type.Integer(),
          keySource: Type.Union([Type.Literal('file'), Type.Literal('next')], { description: '`file`: a new key in the data directory (back it up); `next`: BULWARK_MASTER_KEY_NEXT, which every node should now get as BULWARK_MASTER_KEY' }),
        }),
        ...errorResponses,
      },
    },
  }, async (request) => {
    const report = await vault.rotateMasterKey();
    request.auditTarget = report.masterKeyId;
    return report;
  });

  app.get('/api/v1/system/master-key', {
    config: { auth: { scope: 'secrets:rotate' } },
    schema: {
      tags: ['system'], security: bearer,
      summary: 'Fingerprints (never keys) of the master key in use, of every master key this node holds, and of the master keys the stored data keys are wrapped by',
      response: {
        200: Type.Object({
          masterKeyId: Type.String({ description: 'The key the store uses: new data keys are wrapped under it' }),
          masterKeyIds: Type.Array(Type.String(), { description: 'Every master key this node holds (BULWARK_MASTER_KEY first, then BULWARK_MASTER_KEY_NEXT)' }),
          nextMasterKeyId: Type.Union([Type.String(), Type.Null()], { description: 'The key a rotation re-wraps under (BULWARK_MASTER_KEY_NEXT), or null' }),
          dataKeys: Type.Record(Type.String(), Type.Integer(), { description: 'Stored data keys by the master key that wraps them: after a rotation, only the new key' }),
          secrets: Type.Integer(),
        }),
        ...errorResponses,
      },
    },
  }, async () => {
    const status = await vault.status();
    return { ...status, masterKeyIds: [...status.masterKeyIds], dataKeys: { ...status.dataKeys }, secrets: (await vault.listNames()).length };
  });
};
