export { TwinService, inSync } from './service.js';
export type { DeviceLink, TwinView } from './service.js';
export { twinRoutes } from './routes.js';
export type { DesiredState, ReportedState, TwinRecord, TwinRepository } from './twin.js';
