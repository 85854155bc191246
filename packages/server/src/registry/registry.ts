import type { GroupSelector } from './groups.js';

/** The device inventory: what each device is, where it is in its life, and whether it is connected. */
export const LIFECYCLE_STATES = ['manufactured', 'provisioned', 'active', 'suspended', 'decommissioned'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export interface Connectivity {
  readonly online: boolean;
  /** When the current session began; null while offline. */
  readonly onlineSince: number | null;
  readonly lastSeenAt: number | null;
  readonly connectCount: number;
  readonly lastDisconnectAt: number | null;
  readonly lastDisconnectReason: string | null;
}

export interface DeviceAttributes {
  readonly serial: string | null;
  readonly model: string | null;
  readonly hardwareRevision: string | null;
  readonly firmwareVersion: string | null;
  readonly securityVersion: number | null;
  readonly owner: string | null;
  readonly location: string | null;
  readonly tags: string[];
}

export interface Device extends DeviceAttributes {
  readonly id: string;
  readonly state: LifecycleState;
  /** The state a suspended device returns to on resume. */
  readonly suspendedFrom: LifecycleState | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly connectivity: Connectivity;
  /**
   * 0-100: 100 less a penalty per open alert of the device (critical 40, warning 15, info 5),
   * kept by the alerts in the same transaction as each alert that fires or resolves.
   */
  readonly healthScore: number;
}

export interface DeviceFilter {
  readonly state?: LifecycleState;
  readonly model?: string;
  readonly tag?: string;
  readonly firmwareVersion?: string;
  readonly securityVersion?: number;
  /** Devices whose security version is below this (or unknown): the ones a fix has not reached. */
  readonly securityVersionBelow?: number;
  /** Only devices whose reported configuration has disagreed with the desired one since this time or before (twin drift). */
  readonly driftedSince?: number;
  readonly online?: boolean;
  /** Only devices offline and last seen before this time (never-seen devices are left out). */
  readonly seenBefore?: number;
  /** Only devices in this group (its members, or its query's matches). */
  readonly group?: GroupSelector;
  /** Only devices in at least one of these groups (a caller limited to groups); none: no device. */
  readonly within?: readonly GroupSelector[];
  /** Only ids after this one (keyset paging, ordered by id). */
  readonly after?: string;
  /** `health`: worst health score first, then by id (page on with `afterHealth` and `after` from the last row). */
  readonly sort?: 'id' | 'health';
  /** With sort=health: the last row's health score. */
  readonly afterHealth?: number;
  readonly limit: number;
}

/** A count kept per value of one dimension: `value` is '' for devices without one (no model, no firmware version). */
export interface CountRow {
  readonly dim: string;
  readonly value: string;
  readonly n: number;
}

export interface ValueCount {
  readonly value: string | null;
  readonly count: number;
}

/** Health score bands: good from 80, fair from 50, poor below. */
export const HEALTH_BANDS = ['good', 'fair', 'poor'] as const;
/** A device's open alerts: some not acknowledged (firing), all acknowledged, or none open. */
export const DEVICE_ALERT_STATES = ['firing', 'acknowledged', 'none'] as const;

/**
 * The fleet in numbers, kept as devices change (never a scan of the devices). `total` and
 * `byState` count every registered device; the other dimensions leave decommissioned ones out.
 */
export interface FleetCounts {
  readonly total: number;
  readonly byState: Readonly<Record<LifecycleState, number>>;
  readonly byConnectivity: { readonly online: number; readonly offline: number };
  readonly byHealth: Readonly<Record<(typeof HEALTH_BANDS)[number], number>>;
  readonly byAlertState: Readonly<Record<(typeof DEVICE_ALERT_STATES)[number], number>>;
  /** Most devices first; `value` null: devices without a model. */
  readonly byModel: ValueCount[];
  /** Most devices first; `value` null: devices that never reported a firmware version. */
  readonly byFirmware: ValueCount[];
}

/**
 * A session of a device began or ended. `claim`: the session's claim in the cluster's session
 * directory, larger for every newer session of the device on any node (0, or absent, in
 * embedded mode, where there is no directory). The stored connectivity follows the session
 * with the highest claim, in whatever order the nodes' writes land.
 */
export type ConnectivityEvent =
  /** `address`: where the device connected from (null when the transport does not say). */
  | { readonly kind: 'connect'; readonly id: string; readonly at: number; readonly node: string; readonly claim?: number; readonly address?: string | null }
  | { readonly kind: 'disconnect'; readonly id: string; readonly at: number; readonly reason: string; readonly node: string; readonly claim?: number };

export interface DeviceRepository {
  insert(d: Device): Promise<void>;
  /** Inserts many in one transaction; all or nothing. */
  insertMany(devices: readonly Device[]): Promise<void>;
  get(id: string): Promise<Device | undefined>;
  list(filter: DeviceFilter): Promise<Device[]>;
  /** The fleet counts of every dimension: what has been folded plus the changes since. */
  counts(): Promise<CountRow[]>;
  /** The same counts for the devices in at least one of the groups, by a scan of them. */
  countsWithin(selectors: readonly GroupSelector[]): Promise<CountRow[]>;
  /** Folds the changes recorded since the last fold into the counts; resolves with how many it folded. */
  foldCounts(): Promise<number>;
  updateAttributes(id: string, attrs: Partial<DeviceAttributes>, at: number): Promise<boolean>;
  /** Moves the device to `to` only if it is in one of `from`; false when it was not. */
  transition(id: string, from: readonly LifecycleState[], to: LifecycleState, at: number, suspendedFrom?: LifecycleState | null): Promise<boolean>;
  /**
   * Connects and disconnects, applied in the order given, in one transaction. A connect changes
   * nothing when the device holds a newer claim; a disconnect only when the device still names
   * its node and its claim (a stored claim of 0, embedded mode's, matches any).
   */
  recordConnectivity(events: readonly ConnectivityEvent[]): Promise<void>;
  /**
   * Marks every device offline (embedded start-up: no session survives a restart), and forgets
   * every stored claim: without a directory each claim is 0, and one a cluster left in the same
   * database would refuse every connect.
   */
  markAllOffline(at: number, reason: string): Promise<number>;
  /**
   * Marks offline the devices whose session `node` held and that came online before
   * `connectedBefore` (cluster mode: that node started again, or its lease expired).
   */
  markNodeOffline(node: string, at: number, reason: string, connectedBefore: number): Promise<number>;
  /**
   * Sets to 0 the stored claims above `claim` (cluster mode: the newest claim the session
   * directory had issued when it loaded; higher ones come from a directory that was made anew
   * and counts from 1 again). Resolves with how many it changed.
   */
  forgetClaimsAbove(claim: number): Promise<number>;
}
