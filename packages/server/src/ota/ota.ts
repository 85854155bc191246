import type { Readable } from 'node:stream';
import type { FirmwareManifest, OtaState } from '@bulwark/protocol';

/** Firmware artifacts and rollouts (DESIGN.md §3 ota, issue 6): types and the ports the context needs. */

export interface FirmwareArtifact {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly securityVersion: number;
  readonly model: string;
  readonly hardwareRevisions: string[];
  readonly size: number;
  readonly sha256: string;
  readonly expiresAt: number;
  /** awaiting_image until the image arrived and matched; published after. */
  readonly state: 'awaiting_image' | 'published';
  readonly manifest: FirmwareManifest;
  readonly uploadedBy: string;
  readonly createdAt: number;
  readonly publishedAt: number | null;
}

export interface FirmwareRepository {
  /** False when a release of that name and version already exists. */
  insert(a: FirmwareArtifact): Promise<boolean>;
  get(id: string): Promise<FirmwareArtifact | undefined>;
  findBySha256(sha256: string): Promise<FirmwareArtifact | undefined>;
  markPublished(id: string, at: number): Promise<boolean>;
  delete(id: string): Promise<void>;
  /** Newest first. */
  list(limit: number): Promise<FirmwareArtifact[]>;
}

/** What an image upload produced: its size and digest, as read (cut off past the declared size). */
export interface ReceivedImage {
  readonly size: number;
  readonly sha256: string;
  /** More bytes arrived than the metadata declared (or than the size limit allows); nothing past that was kept. */
  readonly tooLong: boolean;
}

/** A received image, held aside until the caller has checked it. */
export interface PendingImage extends ReceivedImage {
  /** Makes the image the artifact's own, where every node that serves it will find it. */
  commit(): Promise<void>;
  discard(): void;
}

/** The image a node serves: a local file, complete and matching the artifact's size and SHA-256. */
export interface ImageRef {
  readonly id: string;
  readonly size: number;
  readonly sha256: string;
}

/**
 * Where firmware images live. Embedded: files in the data directory (`ArtifactStore`).
 * Cluster: the shared store, with a verified copy in each node's data directory
 * (`SharedArtifactStore`). Downloads are always served from a local file, so Range stays a seek.
 */
export interface ArtifactStorage {
  /** Reads `body`, hashing it, and stops as soon as it passes `limit` bytes; nothing is kept until commit. */
  receive(id: string, body: Readable, limit: number): Promise<PendingImage>;
  /** The path of a local copy of a published image; throws BULWARK_ERR_FIRMWARE_UNAVAILABLE when none can be made. */
  localFile(image: ImageRef): Promise<string>;
  remove(id: string): Promise<void>;
}

/** Firmware images in a store every node reads (cluster mode), as fixed-size chunks in order. */
export interface FirmwareImageRepository {
  /** Replaces the image of an artifact with these chunks, all or nothing; resolves with how many were stored. */
  put(artifactId: string, chunks: AsyncIterable<Buffer>): Promise<number>;
  /** The chunks of an image in order, read one at a time; none when it has no image. */
  chunks(artifactId: string): AsyncIterable<Buffer>;
  /** Which of these artifacts have an image stored. */
  stored(artifactIds: readonly string[]): Promise<Set<string>>;
  delete(artifactId: string): Promise<void>;
}

/** Who gets the update: every given criterion must match (tag also serves as a group). */
export interface RolloutTarget {
  readonly deviceIds?: string[];
  /** The devices of this group when the rollout is created (GET /api/v1/groups). */
  readonly group?: string;
  readonly tag?: string;
  readonly model?: string;
  /** Only devices running this version now (e.g. move 1.4.2 devices first). */
  readonly firmwareVersion?: string;
}

/** A wave's size: cumulative percent of the target (1, 10, 50, 100) or an absolute count of devices. */
export type WaveSpec = { readonly percent: number } | { readonly count: number };

export interface RolloutStrategy {
  /** Devices updated first, as a wave of their own. */
  readonly canary?: string[];
  readonly waves: WaveSpec[];
}

export interface RolloutGates {
  /** Gates are judged once this many devices of a wave have finished. */
  readonly minDevices: number;
  /** Most failed devices (after retries) a wave may have; past it the gate fails. */
  readonly maxFailures?: number;
  readonly maxFailurePercent?: number;
  /** A finished wave needs at least this share committed. */
  readonly minSuccessPercent?: number;
  /** Updated devices in a restart loop, in percentage points above the devices not updated. */
  readonly maxRestartLoopExcessPercent?: number;
  /** Mean crash count of updated devices over that of the rest (1.5 = 50 % more crashes). */
  readonly maxCrashRatio?: number;
  /** Mean reconnect count of updated devices over that of the rest. */
  readonly maxReconnectRatio?: number;
  /**
   * Updated devices gone silent (nothing heard for silentAfterMs after their commit: no health
   * report, connect or disconnect), in percentage points above the devices not updated that
   * were heard since the wave began and then went as quiet. With it, a finished wave waits
   * silentAfterMs after its last commit before the next wave starts.
   */
  readonly maxSilentExcessPercent?: number;
  /**
   * Updated devices that sent telemetry in the silentAfterMs before their commit and none in
   * the last silentAfterMs (a sensor or application the new image broke while the device
   * still connects and reports health), in percentage points above the devices not updated
   * that sent telemetry before the wave began and none since. Holds a finished wave like the
   * silence gate.
   */
  readonly maxTelemetryGapExcessPercent?: number;
  /** How long a device may say nothing before it counts as silent; 10 minutes when not given. */
  readonly silentAfterMs?: number;
  /** What a failed gate does. */
  readonly onFailure: 'pause' | 'abort';
}

/** Devices are notified only inside the window, UTC, minutes after midnight; end may wrap past midnight. */
export interface MaintenanceWindow {
  readonly startMinute: number;
  readonly endMinute: number;
}

export type RolloutState = 'running' | 'paused' | 'aborted' | 'completed';

export interface RolloutEvent {
  readonly at: number;
  /** The wave being updated when it happened. */
  readonly wave: number;
  readonly state: RolloutState;
  readonly actor: string;
  readonly reason: string;
}

export interface Rollout {
  readonly id: string;
  readonly name: string;
  readonly artifactId: string;
  readonly target: RolloutTarget;
  readonly strategy: RolloutStrategy;
  readonly gates: RolloutGates;
  readonly window: MaintenanceWindow | null;
  readonly maxRetries: number;
  readonly state: RolloutState;
  /** Why it is paused, aborted or completed. */
  readonly reason: string | null;
  /** Index of the wave being updated. */
  readonly currentWave: number;
  readonly waveCount: number;
  readonly history: RolloutEvent[];
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Per device: pending until notified, then the device's own states. */
export type DeviceJobState = 'pending' | 'notified' | OtaState;

export interface RolloutDevice {
  readonly rolloutId: string;
  readonly deviceId: string;
  readonly wave: number;
  readonly state: DeviceJobState;
  /** The current attempt's job id; null while pending for the first time. */
  readonly jobId: string | null;
  readonly attempts: number;
  readonly fromVersion: string | null;
  readonly reason: string | null;
  readonly notifiedAt: number | null;
  readonly updatedAt: number;
}

export interface WaveCounts {
  readonly wave: number;
  readonly byState: Readonly<Record<string, number>>;
}

export interface RolloutRepository {
  insert(r: Rollout, devices: readonly RolloutDevice[]): Promise<void>;
  get(id: string): Promise<Rollout | undefined>;
  /** Newest first. */
  list(limit: number, state?: RolloutState): Promise<Rollout[]>;
  /** Writes the rollout only if its stored updatedAt is still `expectUpdatedAt`. */
  update(r: Rollout, expectUpdatedAt: number): Promise<boolean>;
  counts(rolloutId: string): Promise<WaveCounts[]>;
  devices(rolloutId: string, filter: { wave?: number; states?: readonly DeviceJobState[]; limit: number }): Promise<RolloutDevice[]>;
  deviceByJob(jobId: string): Promise<RolloutDevice | undefined>;
  /** Moves a device's job only from one of `from` (with the same job id); false when it had moved on. */
  updateDevice(d: RolloutDevice, from: readonly DeviceJobState[], fromJobId: string | null): Promise<boolean>;
  /** Devices in a non-terminal state whose last change is at or before `before`. */
  stale(rolloutId: string, before: number, limit: number): Promise<RolloutDevice[]>;
  /** When the newest commit of the wave happened; null when none of its devices committed. */
  lastCommitAt(rolloutId: string, wave: number): Promise<number | null>;
  /** Jobs a device was told about and has not finished, newest first. */
  liveJobs(deviceId: string): Promise<RolloutDevice[]>;
  /** The live job of a device for an artifact (a device may download only then). */
  activeJob(deviceId: string, artifactId: string): Promise<RolloutDevice | undefined>;
}
