import type { DeviceEvent, HealthReport } from '@bulwark/protocol';
import type { PostureRecord } from './posture.js';

/** What devices say about themselves: periodic health reports and events (boot, crash, state changes). */

export interface HealthRecord {
  readonly deviceId: string;
  readonly receivedAt: number;
  readonly report: HealthReport;
}

export interface EventRecord {
  readonly deviceId: string;
  readonly id: string;
  readonly type: string;
  /** Device wall clock. */
  readonly ts: number;
  readonly receivedAt: number;
  readonly data: Readonly<Record<string, unknown>> | null;
}

export interface EventFilter {
  readonly deviceId: string;
  readonly type?: string;
  /** Received at or after. */
  readonly sinceMs?: number;
  readonly limit: number;
}

export interface HealthRepository {
  /** Stores a report and keeps only the newest `keep` of the device. */
  insert(r: HealthRecord, keep: number): Promise<void>;
  /** Newest first. */
  history(deviceId: string, limit: number): Promise<HealthRecord[]>;
  deleteBefore(before: number): Promise<number>;
  /** Keeps the newest posture of a device (one per device, replaced by the next; the service merges the parts a report leaves out before). */
  setPosture(r: PostureRecord): Promise<void>;
  posture(deviceId: string): Promise<PostureRecord | null>;
}

export interface EventRepository {
  /** False when the device already sent an event with this id (a retry). */
  insert(e: EventRecord): Promise<boolean>;
  /** Newest first. */
  list(f: EventFilter): Promise<EventRecord[]>;
  deleteBefore(before: number): Promise<number>;
}

export type { DeviceEvent, HealthReport };
