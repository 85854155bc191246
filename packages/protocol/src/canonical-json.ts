/**
 * Canonical JSON for signing (docs/decisions/0011-firmware-metadata.md): the bytes a
 * signature covers are the UTF-8 of this text, so a signer and a verifier that parse and
 * re-serialise the same document always agree on them.
 *
 * - objects: keys sorted by UTF-16 code units (JavaScript's default sort), no duplicates
 *   (JSON.parse already keeps the last one; the signer never writes two), members with an
 *   `undefined` value refused;
 * - arrays in their order;
 * - strings as JSON.stringify writes them (the RFC 8785 / JCS escaping);
 * - numbers: safe integers only (no fractions, exponents, -0, NaN or Infinity), written in
 *   decimal without a sign for non-negative values. Every number in the metadata is a count,
 *   a size or a time in milliseconds, so fractions are never needed, and refusing them
 *   removes the one place where JSON serialisers disagree;
 * - booleans and null as themselves; no whitespace anywhere.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isSafeInteger(value) || Object.is(value, -0)) throw new TypeError(`canonical JSON holds safe integers only, not ${value}`);
      return String(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>);
      for (const [k, v] of entries) if (v === undefined) throw new TypeError(`canonical JSON: member "${k}" is undefined`);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
}
