export { checkTargetUrl, copyStore, resolveSource } from './copy-store.js';
export type { CopyProgress, StoreCopyOptions, StoreCopyReport, TableCount } from './copy-store.js';
export { checkMasterKey } from './master-key-check.js';
export { imagePath } from './images.js';
export { SqliteSource } from './sqlite-source.js';
export { verifySqliteAudit } from './sqlite-audit.js';
