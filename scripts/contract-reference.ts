/**
 * The device contract's reference, rendered from the catalogue in packages/protocol/src/contract:
 * the topic table (docs/reference/topics.md, and the generated block of device-contract.md)
 * and every message's fields and example. Used by gen-reference.ts.
 */
import { DEVICE_MESSAGES, DEVICE_TOPICS, type DeviceMessageName, type DeviceTopic, MESSAGE_EXAMPLES } from '@bulwark/protocol';

type Schema = Readonly<Record<string, unknown>>;

const TOPICS = Object.values(DEVICE_TOPICS) as readonly DeviceTopic[];
const MESSAGE_NAMES = Object.keys(DEVICE_MESSAGES) as DeviceMessageName[];
/** A message's schema as the plain JSON Schema object it is. */
const schemaOf = (name: DeviceMessageName): Schema => DEVICE_MESSAGES[name] as object as Schema;

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (text: string) => `\`${text}\``;
const link = (name: string, page: string) => `[${name}](${page}#${name.toLowerCase()})`;
const topicOf = (t: DeviceTopic) => code(`devices/{id}/${t.pattern}`);
const direction = (t: DeviceTopic) => (t.direction === 'device-to-cloud' ? 'device → cloud' : 'cloud → device');
const size = (bytes: number | undefined) => (bytes === undefined ? '—' : bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`);

/** The name a schema has in DEVICE_MESSAGES (the catalogue reuses the very objects). */
const nameOf = (schema: unknown) => MESSAGE_NAMES.find((n) => schemaOf(n) === schema);

/** One row per topic; `messagesPage` is where the message sections are ('' for the same page). */
export function topicTable(messagesPage: string): string {
  const rows = TOPICS.map((t) => `| ${topicOf(t)} | ${direction(t)} | ${t.qos.join(' or ')} | ${link(t.message, messagesPage)} | ${size(t.maxBytes)} | ${cell(t.description)} |`);
  return ['| topic | direction | QoS | message | at most | what it is |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

function bounds(s: Schema, unit: string): string {
  const min = s.minimum ?? s.minLength;
  const max = s.maximum ?? s.maxLength;
  if (min !== undefined && max !== undefined) return ` ${String(min)}–${String(max)}${unit}`;
  if (max !== undefined) return ` ≤ ${String(max)}${unit}`;
  if (min !== undefined) return ` ≥ ${String(min)}${unit}`;
  return '';
}

/** A short text for the type and rules of a schema: `string (1–64 characters)`, `integer ≥ 0`, … */
function typeText(s: Schema): string {
  const named = nameOf(s);
  if (named) return link(named, '');
  if ('const' in s) return code(JSON.stringify(s.const));
  if (Array.isArray(s.enum)) return `one of ${s.enum.map((v) => code(String(v))).join(', ')}`;
  if (Array.isArray(s.anyOf)) return (s.anyOf as Schema[]).map(typeText).join(' or ');
  switch (s.type) {
    case 'string': {
      const length = bounds(s, ' characters');
      return `string${length ? ` (${length.trim()})` : ''}${typeof s.pattern === 'string' ? `, matching ${code(s.pattern)}` : ''}`;
    }
    case 'integer':
    case 'number':
      return `${s.type}${bounds(s, '')}`;
    case 'boolean':
      return 'boolean';
    case 'null':
      return code('null');
    case 'array': {
      const items = (s.items ?? {}) as Schema;
      const of = items.properties ? 'objects' : typeText(items);
      return `array${s.maxItems === undefined ? '' : ` (≤ ${String(s.maxItems)} items)`} of ${of}`;
    }
    case 'object':
      return 'object';
    default:
      return 'any JSON value';
  }
}

/** Rows for the fields of an object schema; nested objects as `a.b`, objects in arrays as `a[].b`. */
function fieldRows(s: Schema, prefix = ''): string[] {
  const properties = (s.properties ?? {}) as Record<string, Schema>;
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries(properties).flatMap(([key, field]) => {
    const path = `${prefix}${key}`;
    const row = `| ${code(path)} | ${cell(typeText(field))} | ${required.has(key) ? 'yes' : 'no'} | ${cell(String(field.description ?? ''))} |`;
    const items = field.type === 'array' ? (field.items as Schema | undefined) : undefined;
    if (field.properties && !nameOf(field)) return [row, ...fieldRows(field, `${path}.`)];
    if (items?.properties) return [row, ...fieldRows(items, `${path}[].`)];
    return [row];
  });
}

/** On one line when short; else one line per top-level field. */
function exampleText(example: object): string {
  const line = JSON.stringify(example);
  if (line.length <= 100) return line;
  return `{\n${Object.entries(example)
    .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join(',\n')}\n}`;
}

function messageSection(name: DeviceMessageName): string {
  const schema = schemaOf(name);
  const carriedOn = TOPICS.filter((t) => t.message === name).map((t) => `${topicOf(t)} (${direction(t)})`);
  const unions = MESSAGE_NAMES.filter((n) => (schemaOf(n).anyOf as unknown[] | undefined)?.includes(schema));
  const lines = [`### ${name}`, '', String(schema.description ?? '')];
  if (carriedOn.length > 0) lines.push('', `On ${carriedOn.join(', ')}.`);
  if (unions.length > 0) lines.push('', `One of the shapes of ${unions.map((n) => link(n, '')).join(', ')}.`);
  if (Array.isArray(schema.anyOf)) {
    lines.push('', `One of: ${(schema.anyOf as Schema[]).map(typeText).join(', ')}.`);
  } else {
    const open = schema.additionalProperties === false ? 'Other fields are refused.' : 'Other fields are allowed and ignored.';
    lines.push('', '| field | type | required | meaning |', '|---|---|---|---|', ...fieldRows(schema), '', open);
  }
  lines.push('', '```json', exampleText(MESSAGE_EXAMPLES[name]), '```');
  return lines.join('\n');
}

export function topicsPage(): string {
  return `# Device topics and messages

<!-- Generated by \`npm run docs:gen\` from packages/protocol/src/contract. Do not edit by hand. -->

Every MQTT topic of a device's tree and every message on it, from the catalogue the gateway,
the agent and these pages share (\`DEVICE_TOPICS\` and \`DEVICE_MESSAGES\` in
\`@bulwark/protocol\`). A device publishes only to the device → cloud topics of its own tree,
and may subscribe to any filter inside it. Payloads are UTF-8 JSON (telemetry may also be
CBOR); every payload is also bounded by \`mqtt.maxPayloadBytes\`, and may nest at most 16
levels. What the platform does with each message, and what the device must do: see
[device-contract.md](device-contract.md).

## Topics

${topicTable('')}

## Messages

${MESSAGE_NAMES.map(messageSection).join('\n\n')}
`;
}

/** `text` with the lines between `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->` replaced by `block`. */
export function withGeneratedBlock(text: string, name: string, block: string): string {
  const begin = `<!-- BEGIN GENERATED: ${name} (npm run docs:gen; do not edit by hand) -->`;
  const end = `<!-- END GENERATED: ${name} -->`;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`the markers of the generated block "${name}" are missing:\n${begin}\n${end}`);
  return `${text.slice(0, from + begin.length)}\n${block}\n${text.slice(to)}`;
}
