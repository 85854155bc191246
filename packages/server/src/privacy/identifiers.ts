import { type IdentifierKind, PSEUDONYM } from './privacy.js';

/** The pseudonym of an identifier, or undefined when its kind is shown as it is. */
export type Namer = (kind: IdentifierKind, value: string) => string | undefined;

/** Field names whose string values (or arrays of strings) are identifiers of a kind. */
const FIELDS: Readonly<Record<string, IdentifierKind>> = {
  deviceId: 'devices',
  device: 'devices',
  deviceIds: 'devices',
  clientId: 'devices',
  owner: 'owners',
  location: 'locations',
};
/** Fields holding an MQTT topic or filter, `devices/{id}/...`. */
const TOPIC_FIELDS = new Set(['topic', 'filter']);
/** Query parameters naming a device in any request URL (`devices` a comma-separated list of them). */
const URL_DEVICE_PARAMS = new Set(['device', 'deviceId', 'devices']);
/** Query parameters naming a device on a device list (`/api/v1/devices`, `/api/v1/jobs/{id}/devices`): its paging cursor. */
const URL_DEVICE_LIST_PARAMS = new Set(['after']);
/** Subtrees left alone: a reading's payload is the device's own data, protected by its schema (x-sensitive). */
const SKIP = new Set(['data']);
/** Characters a device id may hold (DEVICE_ID_PATTERN): an id found in text must not touch one of these on either side. */
const ID_CHAR = /[A-Za-z0-9._:-]/;

/** How deep the rewrite descends; a subtree deeper than this is withheld (a log line or a body never nests this far). */
const MAX_DEPTH = 32;
export const TOO_DEEP = '[too deep]';
export const CIRCULAR = '[circular]';

/**
 * A copy of a value with its identifiers replaced: fields named for an identifier
 * (deviceId, device, deviceIds, clientId, owner, location), the device in a `devices/{id}/`
 * topic and in a request URL's path or device parameter; then every other occurrence of
 * those same values in the value's text (a message, an error, a reading's `dev/msg` id).
 * The input is never changed. Only plain objects and arrays are copied and descended into:
 * anything else (an Error, a Fastify request, a socket) is kept as it is, by reference, for
 * its serializer to turn into plain data later. A value that refers back to one of its own
 * ancestors becomes `[circular]`, one nested deeper than MAX_DEPTH `[too deep]` (fail closed).
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
  const fields = (key: string | undefined, value: unknown): unknown => {
    if (typeof value !== 'string' || key === undefined) return value;
    const kind = FIELDS[key];
    if (kind !== undefined) return swap(kind, value);
    if (TOPIC_FIELDS.has(key)) return rewriteTopic(value, swap);
    if (key === 'url') return rewriteUrl(value, swap);
    return value;
  };
  const pass1 = walk(root, fields);
  if (found.size === 0) return pass1 as T;
  return walk(pass1, (_key, value) => (typeof value === 'string' ? replaceAll(value, found) : value)) as T;
}

/**
 * A copy of `root` with `leaf(key, value)` applied to every value in it (an array's items under
 * the array's key, so `deviceIds: [...]` holds device ids); what `leaf` changes is not descended
 * into. Subtrees under SKIP keys are kept as they are.
 */
function walk(root: unknown, leaf: (key: string | undefined, value: unknown) => unknown): unknown {
  const ancestors = new Set<object>();
  const visit = (key: string | undefined, value: unknown, depth: number): unknown => {
    const changed = leaf(key, value);
    if (changed !== value || !isPlainContainer(value)) return changed;
    if (ancestors.has(value)) return CIRCULAR;
    if (depth >= MAX_DEPTH) return TOO_DEEP;
    ancestors.add(value);
    try {
      if (Array.isArray(value)) return value.map((v: unknown) => visit(key, v, depth + 1));
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = SKIP.has(k) ? v : visit(k, v, depth + 1);
      return out;
    } finally {
      ancestors.delete(value);
    }
  };
  return visit(undefined, root, 0);
}

/** An array, or an object made by a literal or JSON.parse: the only values copied and descended into. */
function isPlainContainer(v: unknown): v is Record<string, unknown> | unknown[] {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return true;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
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
  const deviceList = path[path.length - 1] === 'devices';
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const param = eq === -1 ? '' : decoded(pair.slice(0, eq));
      if (!URL_DEVICE_PARAMS.has(param) && !(deviceList && URL_DEVICE_LIST_PARAMS.has(param))) return pair;
      const ids = decoded(pair.slice(eq + 1))
        .split(',')
        .map((id) => (id === '' ? id : encodeURIComponent(swap('devices', id))));
      return `${pair.slice(0, eq)}=${ids.join(',')}`;
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
