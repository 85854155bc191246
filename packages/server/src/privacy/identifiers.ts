import { type IdentifierKind, PSEUDONYM } from './privacy.js';

/** The pseudonym of an identifier, or undefined when its kind is shown as it is. */
export type Namer = (kind: IdentifierKind, value: string) => string | undefined;

/** Field names whose string values (or arrays of strings) are identifiers of a kind. */
const FIELDS: Readonly<Record<string, IdentifierKind>> = {
  deviceId: 'devices', device: 'devices', deviceIds: 'devices', clientId: 'devices', owner: 'owners', location: 'locations',
};
/** Fields holding an MQTT topic or filter, `devices/{id}/...`. */
const TOPIC_FIELDS = new Set(['topic', 'filter']);
/** Query parameters naming a device in a request URL. */
const URL_DEVICE_PARAMS = new Set(['device', 'deviceId']);
/** Subtrees left alone: a reading's payload is the device's own data, protected by its schema (x-sensitive). */
const SKIP = new Set(['data']);
/** Characters a device id may hold (DEVICE_ID_PATTERN): an id found in text must not touch one of these on either side. */
const ID_CHAR = /[A-Za-z0-9._:-]/;

/**
 * Replaces the identifiers in a parsed JSON value, in place: fields named for an identifier
 * (deviceId, device, deviceIds, clientId, owner, location), the device in a `devices/{id}/`
 * topic and in a request URL's path or `device` parameter; then every other occurrence of
 * those same values in the value's text (a message, an error, a reading's `dev/msg` id).
 * Returns the value.
 */
export function rewriteIdentifiers<T>(root: T, name: Namer): T {
  const found = new Map<string, string>();
  const swap = (kind: IdentifierKind, value: string): string => {
    if (PSEUDONYM.test(value)) return value;
    const p = name(kind, value);
    if (p === undefined) return value;
    found.set(value, p);
    return p;
  };
  const fields = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(fields);
    if (!isRecord(node)) return node;
    for (const [key, value] of Object.entries(node)) {
      if (SKIP.has(key)) continue;
      const kind = FIELDS[key];
      if (kind !== undefined && typeof value === 'string') node[key] = swap(kind, value);
      else if (kind !== undefined && Array.isArray(value)) node[key] = value.map((v) => (typeof v === 'string' ? swap(kind, v) : fields(v)));
      else if (TOPIC_FIELDS.has(key) && typeof value === 'string') node[key] = rewriteTopic(value, swap);
      else if (key === 'url' && typeof value === 'string') node[key] = rewriteUrl(value, swap);
      else node[key] = fields(value);
    }
    return node;
  };
  const text = (node: unknown): unknown => {
    if (typeof node === 'string') return replaceAll(node, found);
    if (Array.isArray(node)) return node.map(text);
    if (!isRecord(node)) return node;
    for (const [key, value] of Object.entries(node)) if (!SKIP.has(key)) node[key] = text(value);
    return node;
  };
  const out = fields(root);
  return (found.size > 0 ? text(out) : out) as T;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rewriteTopic(topic: string, swap: (kind: IdentifierKind, value: string) => string): string {
  const parts = topic.split('/');
  if (parts[0] !== 'devices' || parts[1] === undefined || parts[1] === '' || parts[1] === '+' || parts[1] === '#') return topic;
  parts[1] = swap('devices', parts[1]);
  return parts.join('/');
}

function rewriteUrl(url: string, swap: (kind: IdentifierKind, value: string) => string): string {
  const q = url.indexOf('?');
  const path = (q === -1 ? url : url.slice(0, q)).split('/');
  for (let i = 1; i < path.length; i += 1) {
    const segment = path[i];
    if (path[i - 1] === 'devices' && segment !== undefined && segment !== '' && segment !== 'stats') path[i] = encodeURIComponent(swap('devices', decoded(segment))).replace(/%3A/g, ':');
  }
  if (q === -1) return path.join('/');
  const query = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq === -1 || !URL_DEVICE_PARAMS.has(decoded(pair.slice(0, eq)))) return pair;
    return `${pair.slice(0, eq)}=${encodeURIComponent(swap('devices', decoded(pair.slice(eq + 1))))}`;
  });
  return `${path.join('/')}?${query.join('&')}`;
}

function decoded(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

/** Whether `at` ends a word: no id character follows, or only a `.` or `:` that ends a sentence or a label ("m-1: refused"). */
function endsWord(s: string, at: number): boolean {
  const next = s.charAt(at);
  if (!ID_CHAR.test(next)) return true;
  return (next === '.' || next === ':') && !ID_CHAR.test(s.charAt(at + 1));
}

/** Every occurrence of a found identifier standing on its own (not part of a longer id), longest first. */
function replaceAll(s: string, found: ReadonlyMap<string, string>): string {
  if (PSEUDONYM.test(s)) return s;
  let out = s;
  for (const [value, p] of [...found].sort((a, b) => b[0].length - a[0].length)) {
    if (value === '' || !out.includes(value)) continue;
    let at = out.indexOf(value);
    while (at !== -1) {
      const before = at === 0 ? '' : out.charAt(at - 1);
      if (!ID_CHAR.test(before) && endsWord(out, at + value.length)) {
        out = out.slice(0, at) + p + out.slice(at + value.length);
        at = out.indexOf(value, at + p.length);
      } else at = out.indexOf(value, at + 1);
    }
  }
  return out;
}
