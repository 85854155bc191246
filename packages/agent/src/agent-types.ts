import type { CommandResult, HealthReport } from '@bulwark/protocol';
import type { Rng } from './backoff.js';
import type { AgentClock } from './clock.js';
import type { CommandCounters } from './commands.js';
import type { SlotStore } from './ota/slots.js';
import type { PostureProbe } from './posture/probe.js';
import type { UpdaterEvent } from './ota/updater.js';
import type { QueueCounters } from './queue.js';
import type { QueueDatabase } from './queue-db.js';
import type { Twin } from './twin.js';
import type { Validator } from './validator.js';

/** The agent's public shapes: what it is given, what it says about itself, what it emits. */

export interface AgentDeps {
  readonly clock?: AgentClock;
  /** Jitter and log sampling; seed it in tests. */
  readonly rng?: Rng;
  /** Battery level in percent, when the device has one. */
  readonly battery?: () => number | undefined;
  readonly firmware?: HealthReport['firmware'];
  /**
   * What the device exposes, for the posture in every health report: listening sockets, debug
   * interfaces, SSH and serial console settings. Default: LinuxPostureProbe on Linux (shared by
   * the agents of one process), none elsewhere; `false` leaves the probe out (verified boot is
   * still reported when updates are on).
   */
  readonly posture?: PostureProbe | false;
  /** Where local log lines go (default: stderr). */
  readonly logSink?: (line: string) => void;
  /**
   * Many devices in one process (a gateway, the simulator): the offline queue is this
   * device's part of a shared queue database (rows under the device id, one group commit
   * for all its agents) instead of `<dataDir>/queue.db`. Closing the agent closes its part
   * only; the owner of the database closes it after its agents.
   */
  readonly queues?: QueueDatabase;
  /** A validator shared by many agents: each distinct command or configuration schema is compiled once. Default: the agent's own. */
  readonly validator?: Validator;
  /**
   * Firmware updates (config `ota`): how the device reboots into the active slot (default:
   * the agent closes and emits 'reboot'; the application restarts the process or the
   * device), the application's own verdict on a new image, and where the slots live.
   */
  readonly ota?: {
    readonly reboot?: () => void | Promise<void>;
    readonly healthCheck?: () => boolean | Promise<boolean>;
    readonly slots?: SlotStore;
    /** Called synchronously on every transition, once it is on disk and before it is acted on or reported. */
    readonly onEvent?: (e: UpdaterEvent) => void;
  };
}

export type AgentState = 'connecting' | 'online' | 'offline' | 'refused' | 'closed';

export interface AgentStatus {
  readonly state: AgentState;
  readonly deviceId: string;
  readonly boot: string;
  readonly queue: QueueCounters & { readonly depth: number; readonly bytes: number; readonly inflight: number };
  readonly commands: CommandCounters;
  readonly twin: Twin['counters'] & { readonly version: number };
  readonly reconnects: number;
  readonly attempts: number;
  readonly lastRefusal?: { readonly reason: string; readonly detail: string; readonly retryInMs: number };
  readonly timeOffsetMs?: number;
  readonly certificate: { readonly serial: string; readonly notAfter: number };
  readonly firmware?: { readonly version: string; readonly securityVersion: number; readonly slot: string; readonly trial: boolean; readonly job?: { readonly id: string; readonly state: string; readonly reason?: string } };
}

export interface AgentEvents {
  state: [AgentState];
  connected: [];
  refused: [{ reason: string; detail: string; retryInMs: number }];
  drained: [];
  renewed: [{ serial: string }];
  commandResult: [string, CommandResult];
  timeSynced: [{ offsetMs: number; rttMs: number }];
  ota: [UpdaterEvent];
  /** The updater switched slots: restart the process or the device now. */
  reboot: [];
}
