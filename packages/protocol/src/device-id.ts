/**
 * Device identifiers appear in certificate names and in MQTT topic levels, so they are
 * restricted to characters that can never act as a topic separator or wildcard.
 */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export type DeviceIdProblem = 'empty' | 'too_long' | 'forbidden_character' | 'bad_first_character';

/** Why `id` cannot be a device id, or undefined when it can. */
export function deviceIdProblem(id: string): DeviceIdProblem | undefined {
  if (id.length === 0) return 'empty';
  if (id.length > 128) return 'too_long';
  // eslint-disable-next-line no-control-regex -- NUL is exactly what must be refused
  if (/[+#/\u0000\s$]/.test(id)) return 'forbidden_character';
  if (!DEVICE_ID_PATTERN.test(id)) return /^[A-Za-z0-9]/.test(id) ? 'forbidden_character' : 'bad_first_character';
  return undefined;
}

export function isDeviceId(id: string): boolean {
  return deviceIdProblem(id) === undefined;
}
