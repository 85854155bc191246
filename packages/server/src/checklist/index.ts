export { BROAD_SCOPES, ChecklistService, DEFAULT_CHECKLIST_SETTINGS } from './service.js';
export type { ChecklistDeps, ChecklistSettings } from './service.js';
export type { CheckResult, CheckStatus, ChecklistReport, ChecklistRepository, CrlAge, DevicePostureFindings, DeviceRef, DeviceTakeovers, ExpiringCertificate, ServiceAccountScopes } from './checklist.js';
export { checklistRoutes } from './routes.js';
export { wireChecklist } from './wiring.js';
