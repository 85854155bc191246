import { filterLevelsMatch } from '../device-inbox.js';

export interface Subscription {
  readonly qos: 0 | 1;
  /** MQTT 5 No Local: the device's own publishes are not sent back to it. */
  readonly noLocal: boolean;
  /** The filter split into levels once, at SUBSCRIBE: matching runs on every message to the device. */
  readonly levels: readonly string[];
}

/** One device's MQTT session state that can outlive its connection: its subscriptions. */
export interface DeviceSession {
  readonly filters: Map<string, Subscription>;
  /** While a connection holds the session: that connection (any object the gateway uses). */
  owner: object | undefined;
  /** Once the connection is gone: when the session is forgotten. */
  expiresAt: number | undefined;
}

/**
 * Sessions kept for devices that connect without a clean start (3.1.1 `clean: false`, or an
 * MQTT 5 Session Expiry Interval): their subscriptions come back on the next connection and
 * CONNACK says `sessionPresent`. Messages are not queued for an absent device: commands, the
 * twin and update jobs are recorded by the platform and sent again when the device subscribes.
 */
export class DeviceSessions {
  readonly #byDevice = new Map<string, DeviceSession>();

  constructor(private readonly now: () => number) {}

  /** The session a new connection takes over: the kept one unless `clean`, else a new one. */
  open(deviceId: string, owner: object, clean: boolean): { session: DeviceSession; present: boolean } {
    const kept = this.#byDevice.get(deviceId);
    const live = kept && (kept.expiresAt === undefined || kept.expiresAt > this.now());
    if (kept && live && !clean) {
      kept.owner = owner;
      kept.expiresAt = undefined;
      return { session: kept, present: true };
    }
    const session: DeviceSession = { filters: new Map(), owner, expiresAt: undefined };
    this.#byDevice.set(deviceId, session);
    return { session, present: false };
  }

  /** The connection is gone: the session is kept for `expiryS` seconds (0 forgets it now). */
  release(deviceId: string, owner: object, expiryS: number): void {
    const s = this.#byDevice.get(deviceId);
    if (!s || s.owner !== owner) return;
    s.owner = undefined;
    if (expiryS <= 0 || s.filters.size === 0) this.#byDevice.delete(deviceId);
    else s.expiresAt = this.now() + expiryS * 1000;
  }

  /** Forgets sessions past their expiry; returns how many. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const [id, s] of this.#byDevice) {
      if (s.expiresAt !== undefined && s.expiresAt <= now) {
        this.#byDevice.delete(id);
        n += 1;
      }
    }
    return n;
  }

  get size(): number {
    return this.#byDevice.size;
  }
}

/** The highest QoS among the session's subscriptions matching `topic`, or undefined when none does. */
export function matchingQos(session: DeviceSession, topic: string, fromDevice: boolean): 0 | 1 | undefined {
  if (session.filters.size === 0) return undefined;
  const levels = topic.split('/');
  let best: 0 | 1 | undefined;
  for (const sub of session.filters.values()) {
    if (fromDevice && sub.noLocal) continue;
    if (!filterLevelsMatch(sub.levels, levels)) continue;
    if (sub.qos === 1) return 1;
    best = 0;
  }
  return best;
}

/** A well-formed topic filter: `#` only as the last level, `+` and `#` only as whole levels. */
export function validFilter(filter: string): boolean {
  if (filter.length === 0) return false;
  const levels = filter.split('/');
  return levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : !l.includes('+') || l === '+'));
}
