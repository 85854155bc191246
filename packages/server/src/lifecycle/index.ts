export { EndOfLifeService, receiptsDirOf } from './end-of-life.js';
export type { EndOfLifeDeps, EndOfLifeResult } from './end-of-life.js';
export { ReceiptSigner, canonicalJson, receiptHash, verifyReceipt } from './receipts.js';
export { lifecycleRoutes } from './routes.js';
export type * from './lifecycle.js';
export { DATA_POLICIES } from './lifecycle.js';
