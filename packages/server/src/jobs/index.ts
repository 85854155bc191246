export { JobService } from './job-service.js';
export type { JobServiceDeps, JobSettings, JobView, NewJob } from './job-service.js';
export { summaryLine } from './job-engine.js';
export { OPERATION_SCOPES, jobRoutes } from './routes.js';
export type * from './jobs.js';
export { JOB_DEVICE_STATES, JOB_STATES, OPERATION_TYPES } from './jobs.js';
