export { SecretVault } from './vault.js';
export type { MasterKeyStatus, RotationReport, VaultDeps } from './vault.js';
export { parseMasterKey } from './master-key-file.js';
export type { DataKeyRecord, MasterKeySource, SealedSecret, SecretRepository } from './secrets.js';
export { secretsRoutes } from './routes.js';
export { HsmToken, sha256 } from './hsm-token.js';
export type { HsmSettings, TokenEcKey } from './hsm-token.js';
