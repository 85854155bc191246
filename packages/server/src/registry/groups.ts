import type { DEVICE_ALERT_STATES, LifecycleState } from './registry.js';

/**
 * A saved query over the registry: every given criterion must hold (AND); a list matches any
 * of its values (OR); `tags` must all be on the device. Evaluated by the store when it is
 * used, so a device joins or leaves the group as it changes.
 */
export interface GroupQuery {
  readonly state?: LifecycleState[];
  readonly model?: string[];
  readonly hardwareRevision?: string[];
  readonly firmware?: string[];
  readonly owner?: string[];
  readonly location?: string[];
  readonly tags?: string[];
  /** Device ids that start with this. */
  readonly idPrefix?: string;
  /** Security version below this, or unknown. */
  readonly securityBelow?: number;
  readonly online?: boolean;
  /** Offline, and last seen at least this long ago (never-seen devices are left out). */
  readonly offlineForMs?: number;
  /** Health score below this (0-100; 80 is "fair or poor"). */
  readonly healthBelow?: number;
  readonly alertState?: (typeof DEVICE_ALERT_STATES)[number][];
}

export type GroupKind = 'static' | 'dynamic';

/** A group id (its name): letters, digits, ".", "_" or "-", starting with a letter or digit, at most 64. */
export const GROUP_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

/** A named set of devices: explicit members (static) or a saved query (dynamic). Its id is its name. */
export interface DeviceGroup {
  readonly id: string;
  readonly description: string | null;
  readonly kind: GroupKind;
  /** The query of a dynamic group; null for a static one. */
  readonly query: GroupQuery | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** How a device list is narrowed to a group: the members of a static one, or the query of a dynamic one as of `now`. */
export type GroupSelector = { readonly kind: 'static'; readonly groupId: string } | { readonly kind: 'dynamic'; readonly query: GroupQuery; readonly now: number };

export interface GroupRepository {
  /** Inserts the group with its first members, all or nothing; false when a group of that id exists. */
  insert(g: DeviceGroup, members?: readonly string[]): Promise<boolean>;
  get(id: string): Promise<DeviceGroup | undefined>;
  list(f: { readonly after?: string; readonly limit: number }): Promise<DeviceGroup[]>;
  update(id: string, changes: { readonly description?: string | null; readonly query?: GroupQuery }, at: number): Promise<boolean>;
  /** Deletes the group and its memberships together (also those added while it is deleted); false when there was none. */
  delete(id: string): Promise<boolean>;
  /** Adds the devices that are not members yet; resolves with how many were added. */
  addMembers(groupId: string, deviceIds: readonly string[], at: number): Promise<number>;
  removeMembers(groupId: string, deviceIds: readonly string[]): Promise<number>;
  /** Of these ids, the ones no device has. */
  missingDevices(deviceIds: readonly string[]): Promise<string[]>;
  /** Devices in the group (decommissioned ones included). */
  count(selector: GroupSelector): Promise<number>;
  /** Removes the device from every static group; returns from how many. */
  removeDeviceEverywhere(deviceId: string): Promise<number>;
  /** Whether the device is in at least one of the groups. */
  anyContains(selectors: readonly GroupSelector[], deviceId: string): Promise<boolean>;
}
