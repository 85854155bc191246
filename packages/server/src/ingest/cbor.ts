/**
 * A strict CBOR (RFC 8949) decoder for telemetry envelopes from constrained devices. It
 * accepts exactly what maps onto JSON: unsigned and negative integers within 2^53, finite
 * floats (half, single, double), UTF-8 text, arrays, maps with text keys, true, false and
 * null. Byte strings, tags, undefined, indefinite lengths, NaN and infinities are refused,
 * as are nesting past `maxDepth` and trailing bytes.
 */
export class CborError extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeCbor(bytes: Uint8Array, maxDepth = 32): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new CborError('truncated CBOR');
  };
  const argument = (info: number): number => {
    if (info < 24) return info;
    if (info === 24) {
      need(1);
      return view.getUint8(at++);
    }
    if (info === 25) {
      need(2);
      const v = view.getUint16(at);
      at += 2;
      return v;
    }
    if (info === 26) {
      need(4);
      const v = view.getUint32(at);
      at += 4;
      return v;
    }
    if (info === 27) {
      need(8);
      const v = view.getBigUint64(at);
      at += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CborError('integer beyond 2^53');
      return Number(v);
    }
    throw new CborError(info === 31 ? 'indefinite lengths are not accepted' : 'reserved additional information');
  };
  const finite = (v: number) => {
    if (!Number.isFinite(v)) throw new CborError('NaN and infinities are not accepted');
    return v;
  };
  const item = (depth: number): unknown => {
    if (depth > maxDepth) throw new CborError(`nested deeper than ${maxDepth} levels`);
    need(1);
    const initial = view.getUint8(at++);
    const major = initial >> 5;
    const info = initial & 0x1f;
    switch (major) {
      case 0:
        return argument(info);
      case 1:
        return -1 - argument(info);
      case 2:
        throw new CborError('byte strings are not accepted');
      case 3: {
        const n = argument(info);
        need(n);
        let text: string;
        try {
          text = utf8.decode(bytes.subarray(at, at + n));
        } catch {
          throw new CborError('text is not UTF-8');
        }
        at += n;
        return text;
      }
      case 4: {
        const n = argument(info);
        if (n > bytes.length - at) throw new CborError('truncated CBOR');
        return Array.from({ length: n }, () => item(depth + 1));
      }
      case 5: {
        const n = argument(info);
        if (n > bytes.length - at) throw new CborError('truncated CBOR');
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i += 1) {
          const key = item(depth + 1);
          if (typeof key !== 'string') throw new CborError('map keys must be text');
          if (key === '__proto__') throw new CborError('__proto__ keys are not accepted');
          Object.defineProperty(out, key, { value: item(depth + 1), enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      case 6:
        throw new CborError('tags are not accepted');
      default:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 25) {
          need(2);
          const v = halfToNumber(view.getUint16(at));
          at += 2;
          return finite(v);
        }
        if (info === 26) {
          need(4);
          const v = view.getFloat32(at);
          at += 4;
          return finite(v);
        }
        if (info === 27) {
          need(8);
          const v = view.getFloat64(at);
          at += 8;
          return finite(v);
        }
        throw new CborError('simple values other than true, false and null are not accepted');
    }
  };
  const value = item(0);
  if (at !== bytes.length) throw new CborError('trailing bytes after the CBOR item');
  return value;
}

function halfToNumber(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (mant + 1024) * 2 ** (exp - 25);
}

/** A CBOR envelope is a map: its first byte has major type 5. JSON text never starts that way. */
export function looksLikeCbor(payload: Uint8Array): boolean {
  const first = payload[0];
  return first !== undefined && first >> 5 === 5;
}
