/**
 * The telemetry stream's names, which applications consuming it depend on (documented in
 * docs/reference/stream.md): keep them stable.
 *
 * Readings: `bulwark.telemetry.<schema name>.<schema version>.<device id>`, so that a
 * consumer's permission can be limited to a schema (`bulwark.telemetry.env-sensor.>`) or to
 * one version of it. Dead letters: `bulwark.deadletters.<reason>.<device id>`.
 * A `.` inside a schema name or device id would split a token: it is written `%2E` (neither
 * may contain `%`, `*`, `>` or white space, so the encoding is unambiguous).
 */
export const TELEMETRY_STREAM = 'BULWARK_TELEMETRY';
export const DEAD_LETTER_STREAM = 'BULWARK_DEAD_LETTERS';
export const TELEMETRY_PREFIX = 'bulwark.telemetry';
export const DEAD_LETTER_PREFIX = 'bulwark.deadletters';

/** One subject token from a schema name or device id. */
export const subjectToken = (s: string): string => s.replaceAll('.', '%2E');
export const fromSubjectToken = (t: string): string => t.replaceAll('%2E', '.');

/** The subject of a reading of `schemaId` (`name@version`) from `deviceId`. */
export function telemetrySubject(schemaId: string, deviceId: string): string {
  const at = schemaId.lastIndexOf('@');
  return `${TELEMETRY_PREFIX}.${subjectToken(schemaId.slice(0, at))}.${schemaId.slice(at + 1)}.${subjectToken(deviceId)}`;
}

/** The subjects of every version of schema `name` (or one version), for consumer filters and permissions. */
export function schemaSubjects(name: string, version?: number): string {
  return `${TELEMETRY_PREFIX}.${subjectToken(name)}.${version ?? '*'}.*`;
}

export function deadLetterSubject(reason: string, deviceId: string): string {
  return `${DEAD_LETTER_PREFIX}.${reason}.${subjectToken(deviceId)}`;
}

/**
 * `Nats-Msg-Id` of a reading: the stream drops a repeat inside its duplicate window. A device
 * id has no `/`, so the first `/` separates it from the message id, which may hold anything.
 */
export const streamMsgId = (deviceId: string, msgId: string): string => `${deviceId}/${msgId}`;
