import { type Clock, PlatformError } from '@bulwark/core';
import { deviceIdProblem } from '@bulwark/protocol';
import { type DeviceGroup, GROUP_ID_PATTERN, type GroupKind, type GroupQuery, type GroupRepository, type GroupSelector } from './groups.js';
import { DEVICE_ALERT_STATES, LIFECYCLE_STATES } from './registry.js';

const GROUP_ID = new RegExp(GROUP_ID_PATTERN);
const TAG = /^[A-Za-z0-9._:=-]{1,64}$/;
/** Most devices one request may add to or remove from a static group. */
export const MEMBERS_PER_REQUEST = 1000;
const MAX_VALUES = 32;
const MAX_OFFLINE_MS = 10 * 365 * 86_400_000;

export interface NewGroup {
  readonly id: string;
  readonly description?: string | null;
  readonly kind: GroupKind;
  readonly query?: GroupQuery;
  /** A static group's first members. */
  readonly members?: readonly string[];
}

const invalid = (problems: string[]) => new PlatformError('BULWARK_ERR_VALIDATION', `invalid group query: ${problems.join('; ')}`, { details: { problems } });

/** Every problem of a dynamic group's query at once, or none. */
export function groupQueryProblems(query: unknown): string[] {
  if (typeof query !== 'object' || query === null || Array.isArray(query)) return ['the query must be an object of criteria'];
  const q = query as Record<string, unknown>;
  const problems: string[] = [];
  const lists: Record<string, (v: string) => boolean> = {
    state: (v) => (LIFECYCLE_STATES as readonly string[]).includes(v),
    alertState: (v) => (DEVICE_ALERT_STATES as readonly string[]).includes(v),
    tags: (v) => TAG.test(v),
    model: (v) => v.length >= 1 && v.length <= 128,
    hardwareRevision: (v) => v.length >= 1 && v.length <= 128,
    firmware: (v) => v.length >= 1 && v.length <= 128,
    owner: (v) => v.length >= 1 && v.length <= 128,
    location: (v) => v.length >= 1 && v.length <= 128,
  };
  const ints: Record<string, [number, number]> = { securityBelow: [0, 2_147_483_647], offlineForMs: [1000, MAX_OFFLINE_MS], healthBelow: [1, 101] };
  const known = [...Object.keys(lists), ...Object.keys(ints), 'online', 'idPrefix'];
  for (const [key, value] of Object.entries(q)) {
    if (!known.includes(key)) problems.push(`"${key}" is not a criterion (use ${known.join(', ')})`);
    else if (key in lists) {
      if (!Array.isArray(value) || value.length === 0 || value.length > MAX_VALUES) problems.push(`${key} must be a list of 1-${MAX_VALUES} values`);
      else for (const v of value) if (typeof v !== 'string' || !lists[key]!(v)) problems.push(`${key}: ${JSON.stringify(v)} is not a valid value`);
    } else if (key in ints) {
      const [min, max] = ints[key]!;
      if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) problems.push(`${key} must be a whole number from ${min} to ${max}`);
    } else if (key === 'online' && typeof value !== 'boolean') problems.push('online must be true or false');
    else if (key === 'idPrefix' && (typeof value !== 'string' || value.length === 0 || value.length > 128 || deviceIdProblem(value))) {
      problems.push('idPrefix must be the start of a device id (letters, digits, ".", "_", ":" or "-")');
    }
  }
  if (Object.keys(q).length === 0) problems.push('name at least one criterion (a query matching every device is the fleet, not a group)');
  if (q.online === true && q.offlineForMs !== undefined) problems.push('online and offlineForMs cannot both hold');
  return problems;
}

/** Device groups: static (explicit members) and dynamic (a saved query), usable wherever devices are listed. */
export class GroupService {
  constructor(
    private readonly repo: GroupRepository,
    private readonly clock: Clock,
  ) {}

  async create(input: NewGroup, by: string): Promise<DeviceGroup> {
    if (!GROUP_ID.test(input.id)) throw new PlatformError('BULWARK_ERR_VALIDATION', `"${input.id}" cannot be a group id: 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    if (input.kind === 'dynamic') {
      if (input.query === undefined) throw invalid(['a dynamic group needs a query']);
      if (input.members !== undefined) throw new PlatformError('BULWARK_ERR_VALIDATION', 'a dynamic group has no explicit members: its query chooses them');
      const problems = groupQueryProblems(input.query);
      if (problems.length > 0) throw invalid(problems);
    } else if (input.query !== undefined) {
      throw new PlatformError('BULWARK_ERR_VALIDATION', 'a static group has no query: give members instead (or make it dynamic)');
    }
    const members = input.members === undefined ? [] : await this.#checkMembers(input.members);
    const now = this.clock.now();
    const group: DeviceGroup = {
      id: input.id,
      description: input.description ?? null,
      kind: input.kind,
      query: input.kind === 'dynamic' ? (input.query ?? null) : null,
      createdBy: by,
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.repo.insert(group, members))) throw new PlatformError('BULWARK_ERR_CONFLICT', `group ${input.id} already exists`);
    return group;
  }

  async get(id: string): Promise<DeviceGroup & { readonly deviceCount: number }> {
    const group = await this.#group(id);
    return { ...group, deviceCount: await this.repo.count(this.#selectorOf(group)) };
  }

  list(f: { readonly after?: string; readonly limit: number }): Promise<DeviceGroup[]> {
    return this.repo.list(f);
  }

  async update(id: string, changes: { readonly description?: string | null; readonly query?: GroupQuery }): Promise<DeviceGroup> {
    const group = await this.#group(id);
    if (changes.query !== undefined) {
      if (group.kind !== 'dynamic') throw new PlatformError('BULWARK_ERR_VALIDATION', `group ${id} is static: it has members, not a query`);
      const problems = groupQueryProblems(changes.query);
      if (problems.length > 0) throw invalid(problems);
    }
    await this.repo.update(id, changes, this.clock.now());
    return this.#group(id);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.repo.delete(id))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no group ${id}`);
  }

  /** Adds every listed device or none (an unknown id refuses the request). */
  async addMembers(id: string, deviceIds: readonly string[]): Promise<number> {
    await this.#static(id);
    return this.repo.addMembers(id, await this.#checkMembers(deviceIds), this.clock.now());
  }

  async removeMembers(id: string, deviceIds: readonly string[]): Promise<number> {
    await this.#static(id);
    if (deviceIds.length > MEMBERS_PER_REQUEST) throw new PlatformError('BULWARK_ERR_VALIDATION', `at most ${MEMBERS_PER_REQUEST} devices a request`);
    return this.repo.removeMembers(id, [...new Set(deviceIds)]);
  }

  /** How a device list is narrowed to the group; BULWARK_ERR_NOT_FOUND when there is none. */
  async selector(id: string): Promise<GroupSelector> {
    return this.#selectorOf(await this.#group(id));
  }

  /** The selectors of those of `ids` that exist (a deleted group selects nothing). */
  async selectors(ids: readonly string[]): Promise<GroupSelector[]> {
    const found = await Promise.all(ids.map((id) => this.repo.get(id)));
    return found.filter((g): g is DeviceGroup => g !== undefined).map((g) => this.#selectorOf(g));
  }

  /** Takes the device out of every static group (a transfer to a new owner); returns from how many. */
  leaveAll(deviceId: string): Promise<number> {
    return this.repo.removeDeviceEverywhere(deviceId);
  }

  /** A group, or undefined when there is none. */
  find(id: string): Promise<DeviceGroup | undefined> {
    return this.repo.get(id);
  }

  /** Whether the device is in at least one of the groups `ids`. */
  async anyContains(ids: readonly string[], deviceId: string): Promise<boolean> {
    const selectors = await this.selectors(ids);
    return selectors.length > 0 && this.repo.anyContains(selectors, deviceId);
  }

  /** Which of the groups `ids` hold the device (a deleted group holds none). */
  async holding(ids: readonly string[], deviceId: string): Promise<string[]> {
    const found = await Promise.all(ids.map((id) => this.repo.get(id)));
    const groups = found.filter((g): g is DeviceGroup => g !== undefined);
    const held = await Promise.all(groups.map((g) => this.repo.anyContains([this.#selectorOf(g)], deviceId)));
    return groups.filter((_, i) => held[i]).map((g) => g.id);
  }

  /** Which of `ids` name existing groups. */
  async existing(ids: readonly string[]): Promise<string[]> {
    return (await Promise.all(ids.map((id) => this.repo.get(id)))).filter((g): g is DeviceGroup => g !== undefined).map((g) => g.id);
  }

  #selectorOf(g: DeviceGroup): GroupSelector {
    return g.kind === 'static' || g.query === null ? { kind: 'static', groupId: g.id } : { kind: 'dynamic', query: g.query, now: this.clock.now() };
  }

  async #group(id: string): Promise<DeviceGroup> {
    const g = await this.repo.get(id);
    if (!g) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no group ${id}`);
    return g;
  }

  async #static(id: string): Promise<void> {
    const g = await this.#group(id);
    if (g.kind !== 'static') throw new PlatformError('BULWARK_ERR_VALIDATION', `group ${id} is dynamic: its query chooses its devices; change the query instead`);
  }

  async #checkMembers(deviceIds: readonly string[]): Promise<string[]> {
    const ids = [...new Set(deviceIds)];
    if (ids.length > MEMBERS_PER_REQUEST) throw new PlatformError('BULWARK_ERR_VALIDATION', `at most ${MEMBERS_PER_REQUEST} devices a request; add more in further requests`);
    const missing = await this.repo.missingDevices(ids);
    if (missing.length > 0) {
      throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no such devices: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''} (nothing was added)`, { details: { missing: missing.length } });
    }
    return ids;
  }
}
