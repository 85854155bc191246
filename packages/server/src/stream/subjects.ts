/**
 * The telemetry stream's names, which applications consuming it depend on (documented in
 * docs/reference/stream.md): keep them stable.
 *
 * Readings: `bulwark.telemetry.<schema name>.<schema version>.<partition>.<device id>`, so
 * that a consumer's permission can be limited to a schema (`bulwark.telemetry.env-sensor.>`)
 * or to one version of it. The partition (0 to STREAM_PARTITIONS - 1, from the device id) lets
 * several store writers share the stream, each acknowledging its own partition one batch at a
 * time, while one device's readings stay in one partition and in order.
 * Dead letters: `bulwark.deadletters.<reason>.<device id>`.
 * A `.` inside a schema name or device id would split a token: it is written `%2E` (neither
 * may contain `%`, `*`, `>` or white space, so the encoding is unambiguous).
 */
export const TELEMETRY_STREAM = 'BULWARK_TELEMETRY';
export const DEAD_LETTER_STREAM = 'BULWARK_DEAD_LETTERS';
export const TELEMETRY_PREFIX = 'bulwark.telemetry';
export const DEAD_LETTER_PREFIX = 'bulwark.deadletters';
/** Fixed when the stream is made: changing it would move devices between partitions and their writers. */
export const STREAM_PARTITIONS = 8;

/** The partition of a device: FNV-1a of its id. */
export function partitionOf(deviceId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i += 1) h = Math.imul(h ^ deviceId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % STREAM_PARTITIONS;
}

/** One subject token from a schema name or device id. */
export const subjectToken = (s: string): string => s.replaceAll('.', '%2E');
export const fromSubjectToken = (t: string): string => t.replaceAll('%2E', '.');

/** The subject of a reading of `schemaId` (`name@version`) from `deviceId`. */
export function telemetrySubject(schemaId: string, deviceId: string): string {
  const at = schemaId.lastIndexOf('@');
  return `${TELEMETRY_PREFIX}.${subjectToken(schemaId.slice(0, at))}.${schemaId.slice(at + 1)}.${partitionOf(deviceId)}.${subjectToken(deviceId)}`;
}

/** The subjects of every version of schema `name` (or one version), for consumer filters and permissions. */
export function schemaSubjects(name: string, version?: number): string {
  return `${TELEMETRY_PREFIX}.${subjectToken(name)}.${version ?? '*'}.*.*`;
}

/** The subjects of one device's readings. */
export function deviceSubjects(deviceId: string): string {
  return `${TELEMETRY_PREFIX}.*.*.${partitionOf(deviceId)}.${subjectToken(deviceId)}`;
}

/** The subjects of one partition (a store writer's share). */
export function partitionSubjects(partition: number): string {
  return `${TELEMETRY_PREFIX}.*.*.${partition}.*`;
}

export function deadLetterSubject(reason: string, deviceId: string): string {
  return `${DEAD_LETTER_PREFIX}.${reason}.${subjectToken(deviceId)}`;
}

/**
 * `Nats-Msg-Id` of a reading: the stream drops a repeat inside its duplicate window. A device
 * id has no `/`, so the first `/` separates it from the message id, which may hold anything.
 */
export const streamMsgId = (deviceId: string, msgId: string): string => `${deviceId}/${msgId}`;

/**
 * How long a pull request of the node's own consumers lives (the idle heartbeat is half of
 * it). A pull lost with a NATS server (the consumer's leader moved) is noticed after two
 * missed heartbeats, about this long, instead of the client's default of a minute, during
 * which a store writer would store nothing.
 */
export const PULL_EXPIRES_MS = 5_000;
