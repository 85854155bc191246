import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/index.js';
import type { TokenKeyRing } from '../access/index.js';
import type { SecretVault } from './vault.js';

const TokenKeyStatusSchema = Type.Object({
  current: Type.String({ description: 'the key new access tokens are signed with (their `tk` claim)' }),
  accepted: Type.Array(
    Type.Object({
      id: Type.String(),
      createdAt: Type.Integer(),
      acceptedUntil: Type.Union([Type.Integer(), Type.Null()], { description: 'until when tokens it signed still verify; null for the current key' }),
    }),
    { description: 'keys whose tokens are accepted, newest first' },
  ),
});

export const secretsRoutes: FastifyPluginAsyncTypebox<{ vault: SecretVault; tokenKeys: Pick<TokenKeyRing, 'rotate' | 'status'> }> = async (app, { vault, tokenKeys }) => {
  app.post(
    '/api/v1/system/token-keys/rotate',
    {
      config: { auth: { scope: 'secrets:rotate' }, audit: 'secrets.rotate-token-key' },
      schema: {
        tags: ['system'],
        security: bearer,
        summary: 'Start signing access tokens with a new key; tokens signed with the previous one keep working until they expire (nobody is logged out); every node signs with the new key within 30 s',
        response: { 200: TokenKeyStatusSchema, ...errorResponses },
      },
    },
    async (request) => {
      const status = await tokenKeys.rotate();
      request.auditTarget = status.current;
      return { current: status.current, accepted: [...status.accepted] };
    },
  );

  app.get(
    '/api/v1/system/token-keys',
    {
      config: { auth: { scope: 'secrets:rotate' } },
      schema: { tags: ['system'], security: bearer, summary: 'Ids (never keys) of the access-token signing keys whose tokens are accepted', response: { 200: TokenKeyStatusSchema, ...errorResponses } },
    },
    async () => {
      const status = tokenKeys.status();
      return { current: status.current, accepted: [...status.accepted] };
    },
  );

  app.post(
    '/api/v1/system/master-key/rotate',
    {
      config: { auth: { scope: 'secrets:rotate' }, audit: 'secrets.rotate-master-key' },
      schema: {
        tags: ['system'],
        security: bearer,
        summary: 'Re-wrap every data key under a new master key, without downtime: a new generated key file, or BULWARK_MASTER_KEY_NEXT (idempotent; refused while a live node of the cluster does not hold that key)',
        response: {
          200: Type.Object({
            previousMasterKeyId: Type.String(),
            masterKeyId: Type.String(),
            dataKeysRewrapped: Type.Integer(),
            keySource: Type.Union([Type.Literal('file'), Type.Literal('next'), Type.Literal('token')], {
              description:
                '`file`: a new key in the data directory (back it up); `next`: BULWARK_MASTER_KEY_NEXT, which every node should now get as BULWARK_MASTER_KEY; `token`: a new key made inside the PKCS#11 token (the previous one stays there for older backups)',
            }),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const report = await vault.rotateMasterKey();
      request.auditTarget = report.masterKeyId;
      return report;
    },
  );

  app.get(
    '/api/v1/system/master-key',
    {
      config: { auth: { scope: 'secrets:rotate' } },
      schema: {
        tags: ['system'],
        security: bearer,
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
    },
    async () => {
      const status = await vault.status();
      return { ...status, masterKeyIds: [...status.masterKeyIds], dataKeys: { ...status.dataKeys }, secrets: (await vault.listNames()).length };
    },
  );
};
