export { openStore, parseStoreUrl, redactUrl, storeOn } from './store.js';
export type { Store, StoreTarget } from './store.js';
export type { SqlClient, SqlEngine, SqlExecutor, SqlValue } from './sql-client.js';
export { SqliteSource, checkMasterKey, copyStore, imagePath, verifySqliteAudit } from './copy/index.js';
export type { CopyProgress, StoreCopyOptions, StoreCopyReport } from './copy/index.js';
