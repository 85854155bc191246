import { type Clock, GroupCommit, PlatformError } from '@bulwark/core';
import { deviceIdProblem } from '@bulwark/protocol';
import type { EventBus } from '../bus/index.js';
import { shapeCounts } from './fleet-counts.js';
import type { GroupSelector } from './groups.js';
import type { ConnectivityEvent, Device, DeviceAttributes, DeviceFilter, DeviceRepository, FleetCounts, LifecycleState } from './registry.js';

export type NewDevice = { readonly id: string } & Partial<DeviceAttributes>;

const TAG = /^[A-Za-z0-9._:=-]{1,64}$/;

const EMPTY_ATTRIBUTES: DeviceAttributes = {
  serial: null,
  model: null,
  hardwareRevision: null,
  firmwareVersion: null,
  securityVersion: null,
  owner: null,
  location: null,
  tags: [],
};

/** Who may move where. A decommissioned device leaves only through a transfer to a new owner (resale). */
const TRANSITIONS: Readonly<Record<string, readonly LifecycleState[]>> = {
  provision: ['manufactured', 'provisioned', 'active'],
  activate: ['provisioned'],
  suspend: ['manufactured', 'provisioned', 'active'],
  resume: ['suspended'],
  decommission: ['manufactured', 'provisioned', 'active', 'suspended'],
  transfer: ['manufactured', 'provisioned', 'active', 'suspended', 'decommissioned'],
};

export class RegistryService {
  /**
   * Connects and disconnects are written together: a connect storm is a few transactions,
   * not one fsync per device (events of one turn, and those that come while a batch commits).
   */
  readonly #connectivity: GroupCommit<ConnectivityEvent, undefined>;
  readonly #listeners: ((e: ConnectivityEvent) => void)[] = [];

  constructor(
    private readonly repo: DeviceRepository,
    private readonly clock: Clock,
    private readonly bus: EventBus,
    /** How long desired and reported configuration may disagree before a device counts as drifted (twin.driftThresholdMs). */
    private readonly driftThresholdMs = 300_000,
    /** This node's id: connects record it, and a disconnect changes only a session this node holds. */
    readonly nodeId = 'local',
  ) {
    this.#connectivity = new GroupCommit(
      async (events) => {
        await repo.recordConnectivity(events);
        return events.map(() => undefined);
      },
      { maxItems: 512, maxDelayMs: 1 },
    );
  }

  validateId(id: string): void {
    const problem = deviceIdProblem(id);
    if (problem) throw new PlatformError('BULWARK_ERR_DEVICE_ID_INVALID', `"${id}" cannot be a device id (${problem.replace(/_/g, ' ')})`);
  }

  #build(input: NewDevice): Device {
    this.validateId(input.id);
    const tags = [...new Set(input.tags ?? [])];
    for (const tag of tags) if (!TAG.test(tag)) throw new PlatformError('BULWARK_ERR_VALIDATION', `tag "${tag}" must be 1-64 characters of letters, digits, ".", "_", ":", "=" or "-"`);
    const now = this.clock.now();
    return {
      ...EMPTY_ATTRIBUTES,
      ...input,
      tags,
      id: input.id,
      state: 'manufactured',
      suspendedFrom: null,
      createdAt: now,
      updatedAt: now,
      connectivity: { online: false, onlineSince: null, lastSeenAt: null, connectCount: 0, lastDisconnectAt: null, lastDisconnectReason: null },
      healthScore: 100,
    };
  }

  async create(input: NewDevice): Promise<Device> {
    const device = this.#build(input);
    if (await this.repo.get(device.id)) throw new PlatformError('BULWARK_ERR_CONFLICT', `device ${device.id} already exists`);
    await this.repo.insert(device);
    return device;
  }

  /** Creates every device or none; refuses the whole batch if any id is invalid, repeated or taken. */
  async createMany(inputs: readonly NewDevice[]): Promise<Device[]> {
    const devices = inputs.map((i) => this.#build(i));
    const seen = new Set<string>();
    for (const d of devices) {
      if (seen.has(d.id)) throw new PlatformError('BULWARK_ERR_CONFLICT', `device ${d.id} appears twice in the batch`);
      seen.add(d.id);
    }
    const taken: string[] = [];
    for (const d of devices) if (await this.repo.get(d.id)) taken.push(d.id);
    if (taken.length > 0) throw new PlatformError('BULWARK_ERR_CONFLICT', `devices already exist: ${taken.slice(0, 10).join(', ')}${taken.length > 10 ? ', …' : ''}`, { details: { taken: taken.length } });
    await this.repo.insertMany(devices);
    return devices;
  }

  async get(id: string): Promise<Device> {
    const d = await this.repo.get(id);
    if (!d) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no device ${id}`);
    return d;
  }

  find(id: string): Promise<Device | undefined> {
    return this.repo.get(id);
  }

  list(filter: DeviceFilter & { readonly drifted?: boolean }): Promise<Device[]> {
    const { drifted, ...rest } = filter;
    return this.repo.list(drifted ? { ...rest, driftedSince: this.clock.now() - this.driftThresholdMs } : rest);
  }

  /** The fleet in numbers (exact: what the store folded plus the changes since). */
  async counts(within?: readonly GroupSelector[]): Promise<FleetCounts> {
    return shapeCounts(within === undefined ? await this.repo.counts() : await this.repo.countsWithin(within));
  }

  async update(id: string, attrs: Partial<DeviceAttributes>): Promise<Device> {
    const device = await this.get(id);
    if (device.state === 'decommissioned') throw new PlatformError('BULWARK_ERR_LIFECYCLE', `device ${id} is decommissioned`);
    if (attrs.tags) for (const tag of attrs.tags) if (!TAG.test(tag)) throw new PlatformError('BULWARK_ERR_VALIDATION', `tag "${tag}" is not allowed`);
    await this.repo.updateAttributes(id, attrs, this.clock.now());
    return this.get(id);
  }

  async #move(id: string, action: keyof typeof TRANSITIONS, to: (d: Device) => LifecycleState, suspendedFrom?: (d: Device) => LifecycleState | null): Promise<Device> {
    const device = await this.get(id);
    const from = TRANSITIONS[action] ?? [];
    if (!from.includes(device.state)) {
      throw new PlatformError('BULWARK_ERR_LIFECYCLE', `cannot ${action} device ${id}: it is ${device.state}`, { details: { state: device.state, allowedFrom: from } });
    }
    const moved = await this.repo.transition(id, [device.state], to(device), this.clock.now(), suspendedFrom ? suspendedFrom(device) : null);
    if (!moved) throw new PlatformError('BULWARK_ERR_CONFLICT', `device ${id} changed state while this request ran; retry`);
    return this.get(id);
  }

  /** Enrollment gave the device a certificate. Active devices stay active (re-enrollment after a reset). */
  async markProvisioned(id: string): Promise<Device> {
    const d = await this.get(id);
    if (d.state === 'active' || d.state === 'provisioned') return d;
    return this.#move(id, 'provision', () => 'provisioned');
  }

  /** First connection of a provisioned device. */
  async markActive(id: string): Promise<void> {
    await this.repo.transition(id, TRANSITIONS.activate ?? [], 'active', this.clock.now());
  }

  async suspend(id: string): Promise<Device> {
    const d = await this.#move(
      id,
      'suspend',
      () => 'suspended',
      (before) => before.state,
    );
    await this.bus.publish({ type: 'device.suspended', deviceId: id });
    return d;
  }

  resume(id: string): Promise<Device> {
    return this.#move(id, 'resume', (d) => d.suspendedFrom ?? 'provisioned');
  }

  async decommission(id: string): Promise<Device> {
    const d = await this.#move(id, 'decommission', () => 'decommissioned');
    await this.bus.publish({ type: 'device.decommissioned', deviceId: id });
    return d;
  }

  /**
   * Resale: the device starts again as manufactured (it enrols anew with a claim token) for
   * `owner`; the previous owner's location and tags go. The caller has dealt with its
   * certificates and data first.
   */
  async transfer(id: string, owner: string): Promise<Device> {
    await this.#move(id, 'transfer', () => 'manufactured');
    await this.repo.updateAttributes(id, { owner, location: null, tags: [] }, this.clock.now());
    return this.get(id);
  }

  /**
   * What the device says it runs (its health report), recorded when it differs from the
   * registry: after a rollback the device did by itself, or an update made outside a
   * rollout. A new version without a security version leaves that unknown (null): the old
   * one described other firmware, and unknown counts as below in the securityBelow filter.
   * Resolves with the previous values when it wrote, undefined when nothing changed.
   */
  async recordFirmware(id: string, fw: { readonly version: string; readonly securityVersion?: number }): Promise<{ firmwareVersion: string | null; securityVersion: number | null } | undefined> {
    const d = await this.repo.get(id);
    if (!d || d.state === 'decommissioned') return undefined;
    const securityVersion = fw.securityVersion ?? (fw.version === d.firmwareVersion ? d.securityVersion : null);
    if (fw.version === d.firmwareVersion && securityVersion === d.securityVersion) return undefined;
    await this.repo.updateAttributes(id, { firmwareVersion: fw.version, securityVersion }, this.clock.now());
    return { firmwareVersion: d.firmwareVersion, securityVersion: d.securityVersion };
  }

  /**
   * Resolves once the connect is stored (or refused: the device holds a newer claim).
   * `claim`: the session's claim in the cluster's session directory (0 in embedded mode).
   */
  recordConnect(id: string, claim: number, address?: string): Promise<void> {
    return this.#record({ kind: 'connect', id, at: this.clock.now(), node: this.nodeId, claim, address: address ?? null });
  }

  /** Resolves once the disconnect is stored (or refused: the device no longer names this node and `claim`). */
  recordDisconnect(id: string, claim: number, reason: string): Promise<void> {
    return this.#record({ kind: 'disconnect', id, at: this.clock.now(), reason, node: this.nodeId, claim });
  }

  /** Sessions that begin and end on this node, as they are recorded (the alert evaluator's offline rules). */
  onConnectivity(listener: (e: ConnectivityEvent) => void): void {
    this.#listeners.push(listener);
  }

  #record(e: ConnectivityEvent): Promise<void> {
    for (const listener of this.#listeners) listener(e);
    return this.#connectivity.add(e);
  }

  /** Writes the connects and disconnects still waiting (before the store closes). */
  flushConnectivity(): Promise<void> {
    return this.#connectivity.drain();
  }

  markAllOffline(reason: string): Promise<number> {
    return this.repo.markAllOffline(this.clock.now(), reason);
  }

  /**
   * Marks offline the devices whose session `node` held (default: this node), connected
   * before `connectedBefore` (default: now): a node that claims its sessions again after its
   * lease was taken records them anew, and a late mark leaves those alone.
   */
  markNodeOffline(reason: string, node = this.nodeId, connectedBefore?: number): Promise<number> {
    const now = this.clock.now();
    return this.repo.markNodeOffline(node, now, reason, connectedBefore ?? now);
  }

  /** Cluster mode: forgets the stored claims above the newest the session directory had issued when it loaded (a directory made anew counts from 1 again). */
  forgetClaimsAbove(claim: number): Promise<number> {
    return this.repo.forgetClaimsAbove(claim);
  }
}
