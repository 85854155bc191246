export { RegistryService } from './service.js';
export type { NewDevice } from './service.js';
export { LIFECYCLE_STATES } from './registry.js';
export type { Connectivity, Device, DeviceAttributes, DeviceFilter, DeviceRepository, LifecycleState } from './registry.js';
