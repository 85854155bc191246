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
    const stack: [unknown, number, string][] = [[ctx.body, 0, '']];
    while (stack.length > 0) {
      const [node, depth, path] = stack.pop() as [unknown, number, string];
      if (node === null || typeof node !== 'object') continue;
      if (depth > ENVELOPE_LIMITS.maxDepth) return reject('too_deep', path || '/', `at most ${ENVELOPE_LIMITS.maxDepth} levels of nesting`, 'deeper');
      for (const key of Object.keys(node)) {
        if (key === '__proto__') return reject('forbidden_key', `${path}/__proto__`, 'no __proto__ keys', '__proto__');
        stack.push([(node as Record<string, unknown>)[key], depth + 1, `${path}/${key}`]);
      }
    }
    return undefined;
  },
};
