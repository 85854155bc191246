export { backupEmbedded } from './backup.js';
export type { BackupOptions, BackupReport } from './backup.js';
export { restoreEmbedded } from './restore.js';
export type { RestoreOptions, RestoreReport } from './restore.js';
export { MANIFEST_FILE } from './files.js';
export type { BackupFile, BackupManifest, BackupPart } from './files.js';
