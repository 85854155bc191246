import { ENVELOPE_LIMITS } from '@bulwark/protocol';
import { decodeCbor, looksLikeCbor } from '../cbor.js';
import { reject, type Step } from '../step.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Bytes to a JSON value. A payload that starts like a CBOR map is decoded as CBOR (strictly:
 * only what JSON can hold). Otherwise the bytes must be valid UTF-8, the text valid JSON, no deeper than
 * the limit, and free of `__proto__` keys (harmless to JSON.parse, dangerous to any code
 * that later merges the object).
 */
export const decode: Step = {
  name: 'decode',
  run(ctx) {
    if (looksLikeCbor(ctx.request.payload)) {
      try {
        ctx.body = decodeCbor(ctx.request.payload, ENVELOPE_LIMITS.maxDepth);
        return undefined;
      } catch (err) {
        return reject('malformed_cbor', '/', 'a CBOR map of JSON-compatible values', (err as Error).message);
      }
    }
    try {
      ctx.text = utf8.decode(ctx.request.payload);
    } catch {
      return reject('invalid_utf8', '/', 'UTF-8 text', `${ctx.request.payload.length} bytes that are not UTF-8`);
    }
    try {
      ctx.body = JSON.parse(ctx.text);
    } catch (err) {
      return reject('malformed_json', '/', 'a JSON envelope', (err as Error).message.slice(0, 120));
    }
    const problem = shapeProblem(ctx.body, 0);
    if (problem) {
      if (problem.kind === 'depth') return reject('too_deep', problem.path || '/', `at most ${ENVELOPE_LIMITS.maxDepth} levels of nesting`, 'deeper');
      if (problem.kind === 'char') return reject('forbidden_character', problem.path || '/', 'text without U+0000 or unpaired surrogates', 'a string with one');
      return reject('forbidden_key', `${problem.path}/__proto__`, 'no __proto__ keys', '__proto__');
    }
    return undefined;
  },
};

/**
 * U+0000 and unpaired surrogates (which JSON escapes can carry): no store can hold them as
 * text (PostgreSQL refuses both in text and jsonb), so a reading with one would be
 * acknowledged and then never stored.
 */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what this looks for
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The first nesting, `__proto__` or unstorable-character problem in a parsed value, with its path. Recursion is
 * bounded by the depth limit, and the path is built only on the way out of a failure, so a
 * valid message allocates nothing here.
 */
function shapeProblem(node: unknown, depth: number): { kind: 'depth' | 'proto' | 'char'; path: string } | undefined {
  if (typeof node === 'string') return UNSTORABLE.test(node) ? { kind: 'char', path: '' } : undefined;
  if (node === null || typeof node !== 'object') return undefined;
  if (depth > ENVELOPE_LIMITS.maxDepth) return { kind: 'depth', path: '' };
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i += 1) {
      const p = shapeProblem(node[i], depth + 1);
      if (p) return { kind: p.kind, path: `/${i}${p.path}` };
    }
    return undefined;
  }
  for (const key in node) {
    if (!Object.hasOwn(node, key)) continue;
    if (key === '__proto__') return { kind: 'proto', path: '' };
    if (UNSTORABLE.test(key)) return { kind: 'char', path: '' };
    const p = shapeProblem((node as Record<string, unknown>)[key], depth + 1);
    if (p) return { kind: p.kind, path: `/${key}${p.path}` };
  }
  return undefined;
}
