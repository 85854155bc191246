export { HealthService } from './service.js';
export type { HealthSettings, HealthView } from './service.js';
export { healthRoutes } from './routes.js';
export type { EventFilter, EventRecord, EventRepository, HealthRecord, HealthRepository } from './health.js';
