import { PlatformError, isPlatformError } from '@bulwark/core';
import type { TelemetryEnvelope } from '@bulwark/protocol';
import type { SchemaService } from '../schemas/index.js';
import type { DeadLetter, DeadLetterView, Sensitivity } from './ingest.js';
import { type FieldProtection, pseudonym } from './steps/mask.js';

/** What a masked part of a dead letter shows. */
export const MASKED = '***';

/** The envelope fields the pipeline reads; anything else a device adds is not kept in a letter sealed field by field. */
const ENVELOPE_KEYS = ['id', 'seq', 'ts', 'mono', 'boot', 'schema'] as const;

type ClearLetter = Omit<DeadLetter, 'protection'>;
type Shown = Pick<DeadLetter, 'payload' | 'problems'>;

/** The place each sealed part is bound to: a value moved to another letter or field does not open. */
const place = {
  payload: (id: string) => `dead-letter/${id}`,
  field: (id: string, field: string) => `dead-letter/${id}/data/${field}`,
  problem: (id: string, i: number) => `dead-letter/${id}/problems/${i}`,
};

/**
 * Keeps dead letters protected at rest and shows them masked or, for telemetry:decrypt, in
 * clear. A letter refused by a known schema (schema_violation) has the fields the schema
 * marks `x-sensitive` encrypted in place, in every mode (a replay needs the value; shown in
 * clear, each field reads as a stored reading would: encrypt in clear, hash as its
 * pseudonym, mask as `***`). A letter with no usable schema (unknown schema, a payload that
 * did not decode, a bad envelope) is encrypted whole, since nothing says which parts are
 * sensitive. Problems' `got` (which quotes the value) is sealed with the part it quotes.
 */
export class DeadLetterSeal {
  constructor(
    private readonly schemas: SchemaService,
    private readonly protection: FieldProtection,
  ) {}

  /** The letter as it is stored. */
  async seal(letter: ClearLetter, envelope: TelemetryEnvelope | undefined): Promise<DeadLetter> {
    if (letter.reason !== 'schema_violation' || !envelope) return this.sealWhole(letter);
    const modes = await this.schemas.sensitiveFields(envelope.schema);
    return modes.size === 0 ? { ...letter, protection: { kind: 'fields', fields: {}, problems: letter.problems.map(() => null) } } : this.#sealFields(letter, envelope, modes);
  }

  /** The payload and every problem's `got` as one encrypted value each. */
  sealWhole(letter: ClearLetter): DeadLetter {
    return {
      ...letter,
      payload: this.#encrypt(letter.payload, place.payload(letter.id)),
      problems: letter.problems.map((p, i) => ({ ...p, got: this.#encrypt(p.got, place.problem(letter.id, i)) })),
      protection: { kind: 'whole' },
    };
  }

  #sealFields(letter: ClearLetter, envelope: TelemetryEnvelope, modes: ReadonlyMap<string, Sensitivity>): DeadLetter {
    const data: Record<string, unknown> = { ...envelope.data };
    const sealed = [...modes].filter(([field]) => Object.hasOwn(data, field));
    for (const [field] of sealed) data[field] = this.#encrypt(JSON.stringify(data[field]), place.field(letter.id, field));
    // Re-serialised from the parsed envelope: a repeated key or a CBOR payload cannot leave a clear copy behind.
    const body: Record<string, unknown> = {};
    for (const key of ENVELOPE_KEYS) if (envelope[key] !== undefined) body[key] = envelope[key];
    body.data = data;
    const sensitivityOf = problemSensitivity(modes);
    const problemModes = letter.problems.map((p) => sensitivityOf(p.path));
    return {
      ...letter,
      payload: JSON.stringify(body),
      problems: letter.problems.map((p, i) => (problemModes[i] ? { ...p, got: this.#encrypt(p.got, place.problem(letter.id, i)) } : p)),
      protection: { kind: 'fields', fields: Object.fromEntries(sealed), problems: problemModes },
    };
  }

  /** The letter with every sealed part shown as `***`: what anyone with telemetry:read sees. Letters still in clear are masked whole. */
  mask(letter: DeadLetter): DeadLetterView {
    const p = letter.protection;
    if (p.kind !== 'fields') return view(letter, { payload: MASKED, problems: letter.problems.map((x) => ({ ...x, got: MASKED })) }, false);
    const fields = Object.keys(p.fields);
    const payload =
      fields.length === 0
        ? letter.payload
        : rewriteData(letter.payload, (data) => {
            for (const f of fields) if (Object.hasOwn(data, f)) data[f] = MASKED;
          });
    return view(letter, { payload: payload ?? MASKED, problems: letter.problems.map((x, i) => (p.problems[i] ? { ...x, got: MASKED } : x)) }, false);
  }

  /** The letter in clear as far as its schema allows. Never throws: a letter that does not decrypt is shown masked, with the reason. */
  async reveal(letter: DeadLetter): Promise<DeadLetterView> {
    try {
      return view(letter, await this.#revealed(letter), true);
    } catch (err) {
      return { ...this.mask(letter), decryptError: describe(err) };
    }
  }

  async #revealed(letter: DeadLetter): Promise<Shown> {
    const p = letter.protection;
    if (p.kind === 'none') return letter;
    if (p.kind === 'whole') {
      return {
        payload: await this.#decrypt(letter.payload, place.payload(letter.id)),
        problems: await Promise.all(letter.problems.map(async (x, i) => ({ ...x, got: await this.#decrypt(x.got, place.problem(letter.id, i)) }))),
      };
    }
    const body = parseBody(letter.payload, Object.keys(p.fields).length > 0);
    if (body) {
      for (const [field, mode] of Object.entries(p.fields)) {
        if (mode === 'mask') body.data[field] = MASKED;
        else {
          const raw = await this.protection.decrypt(String(body.data[field]), place.field(letter.id, field));
          body.data[field] = mode === 'encrypt' ? JSON.parse(raw.toString('utf8')) : pseudonym(this.protection.pseudonymKey, letter.schemaId ?? '', field, raw);
        }
      }
    }
    const problems = await Promise.all(
      letter.problems.map(async (x, i) => {
        const mode = p.problems[i];
        if (!mode) return x;
        return { ...x, got: mode === 'encrypt' ? await this.#decrypt(x.got, place.problem(letter.id, i)) : MASKED };
      }),
    );
    return { payload: body ? JSON.stringify(body) : letter.payload, problems };
  }

  /** The payload's bytes as the device sent them (or, for a letter sealed field by field, the same envelope), for a replay. */
  async open(letter: DeadLetter): Promise<Buffer> {
    let text: string;
    try {
      const p = letter.protection;
      text = letter.payload;
      if (p.kind === 'whole') text = await this.#decrypt(text, place.payload(letter.id));
      const body = p.kind === 'fields' ? parseBody(text, Object.keys(p.fields).length > 0) : undefined;
      if (p.kind === 'fields' && body) {
        for (const field of Object.keys(p.fields)) body.data[field] = JSON.parse(await this.#decrypt(String(body.data[field]), place.field(letter.id, field)));
        text = JSON.stringify(body);
      }
    } catch (err) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', `dead letter ${letter.id} cannot be decrypted, so it cannot be replayed: ${describe(err)}`, { cause: err });
    }
    return text.startsWith('base64:') ? Buffer.from(text.slice(7), 'base64') : Buffer.from(text, 'utf8');
  }

  #encrypt(text: string, context: string): string {
    return this.protection.encrypt(Buffer.from(text, 'utf8'), context);
  }

  async #decrypt(text: string, context: string): Promise<string> {
    return (await this.protection.decrypt(text, context)).toString('utf8');
  }
}

/** The sensitivity a problem's `got` quotes: that of the top-level field its path is in, or for the whole data (`/`) the strictest one. */
function problemSensitivity(modes: ReadonlyMap<string, Sensitivity>): (path: string) => Sensitivity | null {
  const whole: Sensitivity = [...modes.values()].every((m) => m === 'encrypt') ? 'encrypt' : 'mask';
  return (path) => {
    const top = path.split('/')[1];
    return top ? (modes.get(top.replace(/~1/g, '/').replace(/~0/g, '~')) ?? null) : whole;
  };
}

interface Body {
  data: Record<string, unknown>;
}

/** The stored envelope of a letter sealed field by field; undefined when it holds no sealed field (then the payload is as received). */
function parseBody(payload: string, hasFields: boolean): Body | undefined {
  if (!hasFields) return undefined;
  const body = JSON.parse(payload) as Partial<Body> | null;
  if (!body || typeof body.data !== 'object' || body.data === null) throw new Error('the stored envelope has no data object');
  return body as Body;
}

function rewriteData(payload: string, change: (data: Record<string, unknown>) => void): string | undefined {
  try {
    const body = parseBody(payload, true) as Body;
    change(body.data);
    return JSON.stringify(body);
  } catch {
    return undefined;
  }
}

function view(letter: DeadLetter, shown: Shown, revealed: boolean): DeadLetterView {
  const { protection, ...rest } = letter;
  return { ...rest, payload: shown.payload, problems: shown.problems, protection: protection.kind, sealedFields: protection.kind === 'fields' ? Object.keys(protection.fields) : [], revealed };
}

function describe(err: unknown): string {
  if (isPlatformError(err)) return `${err.code}: ${err.message}`;
  return `the stored letter is damaged (${err instanceof Error ? err.message : String(err)})`;
}
