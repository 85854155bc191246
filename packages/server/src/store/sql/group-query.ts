import type { GroupSelector } from '../../registry/index.js';
import { HAS_TAG, Where, tagPattern } from './where.js';

/** Narrows a query over `devices` to a group: its members, or its saved query as of `now`. */
export function whereInGroup(w: Where, s: GroupSelector): Where {
  if (s.kind === 'static') return w.add('id IN (SELECT device_id FROM device_group_members WHERE group_id = ?)', s.groupId);
  const q = s.query;
  const anyOf = (column: string, values: readonly string[] | undefined) => {
    if (values && values.length > 0) w.addAll(`${column} IN (${values.map(() => '?').join(', ')})`, values);
  };
  anyOf('state', q.state);
  anyOf('model', q.model);
  anyOf('hardware_revision', q.hardwareRevision);
  anyOf('firmware_version', q.firmware);
  anyOf('owner', q.owner);
  anyOf('location', q.location);
  anyOf('alert_state', q.alertState);
  for (const tag of q.tags ?? []) w.add(HAS_TAG, tagPattern(tag));
  // Exact on both engines (SQLite's LIKE ignores case; `_` in ids is a LIKE wildcard).
  if (q.idPrefix !== undefined) w.addAll('substr(id, 1, ?) = ?', [q.idPrefix.length, q.idPrefix]);
  w.add('(security_version IS NULL OR security_version < ?)', q.securityBelow);
  if (q.online !== undefined) w.raw(q.online ? 'online_since IS NOT NULL' : 'online_since IS NULL');
  w.add('online_since IS NULL AND last_seen_at <= ?', q.offlineForMs === undefined ? undefined : s.now - q.offlineForMs);
  w.add('health_score < ?', q.healthBelow);
  return w;
}

/** `column` (a device id) names a device in at least one of the groups; none: no device. */
export function whereDeviceWithin(w: Where, column: string, within: readonly GroupSelector[]): Where {
  const sub = new Where(w.params).anyOf(within.map((g) => (part: Where) => void whereInGroup(part, g)));
  return w.raw(`${column} IN (SELECT id FROM devices ${sub})`);
}
