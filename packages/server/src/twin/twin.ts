/** Desired against reported configuration per device (DESIGN.md §4, issue 5). */

export interface DesiredState {
  /** Monotonic per device, assigned by the platform; 0 means nothing was ever desired. */
  readonly version: number;
  readonly config: Readonly<Record<string, unknown>>;
  readonly updatedAt: number;
  readonly updatedBy: string;
}

export interface ReportedState {
  /** The desired version this report answers. */
  readonly version: number;
  readonly status: 'applied' | 'rejected';
  /** The configuration in effect on the device. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly reason: string | null;
  readonly detail: string | null;
  /** Device wall clock when it reported. */
  readonly deviceTs: number | null;
  readonly receivedAt: number;
}

export interface TwinRecord {
  readonly deviceId: string;
  readonly desired: DesiredState | null;
  readonly reported: ReportedState | null;
  /** Since when desired and reported disagree; null while in sync. */
  readonly driftSince: number | null;
}

export interface TwinRepository {
  get(deviceId: string): Promise<TwinRecord | undefined>;
  /**
   * Writes the next desired state only if the stored desired version is still `expectVersion`
   * (0 when none was ever set); false when another writer got there first.
   */
  putDesired(deviceId: string, expectVersion: number, desired: DesiredState): Promise<boolean>;
  putReported(deviceId: string, reported: ReportedState): Promise<void>;
  setDriftSince(deviceId: string, driftSince: number | null): Promise<void>;
  /** Twins out of sync since `atOrBefore` or earlier, oldest drift first. */
  listDrifting(atOrBefore: number, limit: number): Promise<TwinRecord[]>;
}
