export { RegistryService } from './service.js';
export type { NewDevice } from './service.js';
export { CountsFolder } from './fleet-counts.js';
export { DEVICE_ALERT_STATES, HEALTH_BANDS, LIFECYCLE_STATES } from './registry.js';
export type { Connectivity, Device, DeviceAttributes, DeviceFilter, DeviceRepository, FleetCounts, LifecycleState, ValueCount } from './registry.js';
export { GroupService, groupQueryProblems } from './group-service.js';
export type { NewGroup } from './group-service.js';
export { GROUP_ID_PATTERN } from './groups.js';
export type { DeviceGroup, GroupQuery, GroupRepository, GroupSelector } from './groups.js';
