export { HealthService } from './service.js';
export type { HealthSettings, HealthView } from './service.js';
export { healthRoutes } from './routes.js';
export type { EventFilter, EventRecord, EventRepository, HealthRecord, HealthRepository, HealthReport } from './health.js';
export { POSTURE_FINDING_KINDS, evaluatePosture, worstOf } from './posture.js';
export type { PostureFinding, PostureFindingKind, PostureRecord, PostureSeverity } from './posture.js';
