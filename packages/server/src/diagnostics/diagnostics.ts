/** Remote commands and remote logs (issue 5). */

export const COMMAND_STATES = ['pending', 'sent', 'accepted', 'succeeded', 'failed', 'rejected', 'expired'] as const;
export type CommandState = (typeof COMMAND_STATES)[number];
/** States after which nothing changes the record. `expired` is not final: a late answer from the device still lands. */
export const FINAL_STATES: readonly CommandState[] = ['succeeded', 'failed', 'rejected'];
/** States in which the platform (re)sends the request to the device. */
export const OPEN_STATES: readonly CommandState[] = ['pending', 'sent'];

export interface CommandRecord {
  readonly id: string;
  readonly deviceId: string;
  readonly name: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly status: CommandState;
  readonly issuedBy: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  /** Last time the request was published to the device; null while it never was. */
  readonly sentAt: number | null;
  readonly sendCount: number;
  /** When the device's last answer arrived. */
  readonly answeredAt: number | null;
  readonly reason: string | null;
  readonly detail: string | null;
  readonly output: unknown;
  readonly updatedAt: number;
}

export interface CommandFilter {
  readonly deviceId: string;
  readonly status?: CommandState;
  readonly name?: string;
  readonly limit: number;
}

export interface CommandRepository {
  insert(c: CommandRecord): Promise<void>;
  get(deviceId: string, id: string): Promise<CommandRecord | undefined>;
  /** Newest first. */
  list(f: CommandFilter): Promise<CommandRecord[]>;
  /** Pending or sent commands of a device that have not expired at `now`, oldest first. */
  listOpen(deviceId: string, now: number, limit: number): Promise<CommandRecord[]>;
  countOpen(deviceId: string, now: number): Promise<number>;
  markSent(deviceId: string, id: string, at: number): Promise<void>;
  /** Records an answer unless the command already ended; false when it had. */
  answer(deviceId: string, id: string, a: { status: CommandState; reason: string | null; detail: string | null; output: unknown; at: number }): Promise<boolean>;
  /**
   * Expires pending/sent commands whose expiresAt ≤ now, and accepted ones with no final answer
   * by expiresAt + acceptedGraceMs; resolves with how many.
   */
  expire(now: number, acceptedGraceMs: number): Promise<number>;
  /** Ends every command still waiting for the device (pending, sent, accepted) as expired with `reason`; returns how many. */
  cancelOpen(deviceId: string, reason: string, at: number): Promise<number>;
  /** Deletes ended commands last changed before `before`. */
  deleteEndedBefore(before: number): Promise<number>;
}
