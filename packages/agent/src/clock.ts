import { randomBytes } from 'node:crypto';

/**
 * The agent's two clocks. `wall` is the device's wall clock (may be wrong: never synced,
 * or skewed); `mono` is milliseconds since this process started and never jumps. Both are
 * injected so tests can skew the wall clock or drive time by hand.
 */
export interface AgentClock {
  wall(): number;
  mono(): number;
}

const started = performance.now();

export const systemAgentClock: AgentClock = {
  wall: () => Date.now(),
  mono: () => Math.round(performance.now() - started),
};

/** The system clocks with the wall clock moved by `offsetMs` (a device whose clock is wrong). */
export function skewedClock(offsetMs: number, base: AgentClock = systemAgentClock): AgentClock {
  return { wall: () => base.wall() + offsetMs, mono: () => base.mono() };
}

/** A new boot id for every process start: 12 base-36 characters. */
export function newBootId(): string {
  return BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString(36)
    .padStart(12, '0')
    .slice(-12);
}
