import type { DeviceGroup, GroupKind, GroupQuery, GroupRepository, GroupSelector } from '../../registry/index.js';
import type { SqlClient, SqlValue } from '../sql-client.js';
import { whereInGroup } from './group-query.js';
import { fromJson, toJson } from './json.js';
import { Where, numberedParams } from './where.js';

interface GroupRow {
  id: string;
  description: string | null;
  kind: string;
  query: string | null;
  created_by: string;
  created_at: number;
  updated_at: number;
}

const toGroup = (r: GroupRow): DeviceGroup => ({
  id: r.id,
  description: r.description,
  kind: r.kind as GroupKind,
  query: fromJson<GroupQuery>(r.query) ?? null,
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

const ADD_MEMBER = 'INSERT INTO device_group_members (group_id, device_id, added_at) VALUES ($1, $2, $3) ON CONFLICT (group_id, device_id) DO NOTHING';

export class SqlGroupRepository implements GroupRepository {
  constructor(private readonly db: SqlClient) {}

  insert(g: DeviceGroup, members: readonly string[] = []): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const inserted = await tx.run(`INSERT INTO device_groups (id, description, kind, query, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`, [
        g.id,
        g.description,
        g.kind,
        g.query === null ? null : toJson(g.query),
        g.createdBy,
        g.createdAt,
        g.updatedAt,
      ]);
      if (inserted === 1 && members.length > 0)
        await tx.runMany(
          ADD_MEMBER,
          members.map((id) => [g.id, id, g.createdAt]),
        );
      return inserted === 1;
    });
  }

  async get(id: string): Promise<DeviceGroup | undefined> {
    const row = await this.db.get<GroupRow>('SELECT * FROM device_groups WHERE id = $1', [id]);
    return row && toGroup(row);
  }

  async list(f: { readonly after?: string; readonly limit: number }): Promise<DeviceGroup[]> {
    const w = new Where().add('id > ?', f.after);
    return (await this.db.all<GroupRow>(`SELECT * FROM device_groups ${w} ORDER BY id LIMIT ${w.next(f.limit)}`, w.params)).map(toGroup);
  }

  async update(id: string, changes: { readonly description?: string | null; readonly query?: GroupQuery }, at: number): Promise<boolean> {
    const sets = ['updated_at = $2'];
    const params: SqlValue[] = [id, at];
    if (changes.description !== undefined) sets.push(`description = $${params.push(changes.description)}`);
    if (changes.query !== undefined) sets.push(`query = $${params.push(toJson(changes.query))}`);
    return (await this.db.run(`UPDATE device_groups SET ${sets.join(', ')} WHERE id = $1`, params)) === 1;
  }

  async delete(id: string): Promise<boolean> {
    // Its memberships go with it (ON DELETE CASCADE), also those an add running beside it wrote.
    return (await this.db.run('DELETE FROM device_groups WHERE id = $1', [id])) === 1;
  }

  async addMembers(groupId: string, deviceIds: readonly string[], at: number): Promise<number> {
    const added = await this.db.transaction((tx) =>
      tx.runMany(
        ADD_MEMBER,
        deviceIds.map((id) => [groupId, id, at]),
      ),
    );
    return added.reduce((a, b) => a + b, 0);
  }

  async removeMembers(groupId: string, deviceIds: readonly string[]): Promise<number> {
    if (deviceIds.length === 0) return 0;
    return this.db.run(`DELETE FROM device_group_members WHERE group_id = $1 AND device_id IN (${numberedParams(deviceIds.length, 2)})`, [groupId, ...deviceIds]);
  }

  async missingDevices(deviceIds: readonly string[]): Promise<string[]> {
    const found = new Set<string>();
    for (let i = 0; i < deviceIds.length; i += 500) {
      const chunk = deviceIds.slice(i, i + 500);
      for (const r of await this.db.all<{ id: string }>(`SELECT id FROM devices WHERE id IN (${numberedParams(chunk.length, 1)})`, chunk)) found.add(r.id);
    }
    return deviceIds.filter((id) => !found.has(id));
  }

  removeDeviceEverywhere(deviceId: string): Promise<number> {
    return this.db.run('DELETE FROM device_group_members WHERE device_id = $1', [deviceId]);
  }

  async anyContains(selectors: readonly GroupSelector[], deviceId: string): Promise<boolean> {
    const w = new Where().add('id = ?', deviceId).anyOf(selectors.map((g) => (sub: Where) => void whereInGroup(sub, g)));
    return (await this.db.get(`SELECT 1 AS found FROM devices ${w}`, w.params)) !== undefined;
  }

  async count(selector: GroupSelector): Promise<number> {
    const w = whereInGroup(new Where(), selector);
    return Number((await this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM devices ${w}`, w.params))?.n ?? 0);
  }
}
