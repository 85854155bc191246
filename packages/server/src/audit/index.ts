export { AuditService } from './service.js';
export { GENESIS_HASH, entryHash, sealEntry, verifyChain } from './chain.js';
export type { VerifyReport, ChainProblem } from './chain.js';
export type { AuditEntry, AuditEvent, AuditFilter, AuditHead, AuditRepository, AuditResult } from './audit.js';
export { auditRoutes } from './routes.js';
export { AuditCheckpointWriter, CHECKPOINT_KEY_SECRET, checkCheckpoints, parseCheckpointLines, signCheckpoint, vaultCheckpointKeys } from './checkpoints.js';
export type { AuditCheckpoint, CheckpointKeys, CheckpointProblem, CheckpointReport } from './checkpoints.js';
