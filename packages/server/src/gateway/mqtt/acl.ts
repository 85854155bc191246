/**
 * Per-device least privilege on the topic tree (DESIGN.md §4). A device publishes only to
 * the device-to-cloud topics of its own tree, and subscribes only inside its own tree.
 * Pure functions: the gateway asks, these answer with a reason when the answer is no.
 */
export type AclDenial =
  | 'outside_own_tree'
  | 'not_a_device_to_cloud_topic'
  | 'wildcard_in_publish'
  | 'system_topic'
  | 'empty_level'
  | 'nul_character';

/** Suffixes (after `devices/{id}/`) a device may publish to; `*` is one level of any name. */
const DEVICE_TO_CLOUD: readonly (readonly string[])[] = [
  ['telemetry'],
  ['telemetry', '*'],
  ['events'],
  ['health'],
  ['twin', 'reported'],
  ['commands', '*', 'result'],
  ['ota', 'status'],
  ['time'],
  ['logs'],
  ['certs', 'rotate'],
];

function common(topic: string, deviceId: string): { levels: string[] } | AclDenial {
  if (topic.includes('\u0000')) return 'nul_character';
  if (topic.startsWith('$')) return 'system_topic';
  const levels = topic.split('/');
  if (levels[0] !== 'devices' || levels[1] !== deviceId || levels.length < 3) return 'outside_own_tree';
  if (levels.some((l) => l.length === 0)) return 'empty_level';
  return { levels };
}

export function publishDenial(topic: string, deviceId: string): AclDenial | undefined {
  if (/[+#]/.test(topic)) return 'wildcard_in_publish';
  const c = common(topic, deviceId);
  if (typeof c === 'string') return c;
  const suffix = c.levels.slice(2);
  const allowed = DEVICE_TO_CLOUD.some((p) => p.length === suffix.length && p.every((part, i) => part === '*' || part === suffix[i]));
  return allowed ? undefined : 'not_a_device_to_cloud_topic';
}

/** A subscription filter is allowed when every topic it can match lies in the device's tree. */
export function subscribeDenial(filter: string, deviceId: string): AclDenial | undefined {
  const c = common(filter, deviceId);
  return typeof c === 'string' ? c : undefined;
}
