import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { PlatformError } from '@bulwark/core';
import type { SchemaDocument, SchemaProblem } from './schemas.js';

export const SCHEMA_ID = /^([a-z0-9][a-z0-9._-]{0,63})@([1-9][0-9]{0,5})$/;
const UNIT = /^[A-Za-z0-9_%./^*-]{1,32}$/;
export const SENSITIVITY = ['mask', 'hash', 'encrypt'] as const;
const MAX_DEPTH = 16;

/** A compiled telemetry schema. */
export interface CompiledSchema {
  readonly name: string;
  readonly version: number;
  validate(data: unknown): SchemaProblem[];
}

/**
 * Compiles telemetry schemas with ajv, once each. Platform keywords (`x-unit`,
 * `x-sensitive`) are declared so that strict mode still rejects every unknown keyword:
 * a typo in a schema is an error at registration, not a silently ignored rule.
 */
export function createSchemaCompiler() {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, validateFormats: false });
  ajv.addKeyword({ keyword: 'x-unit', metaSchema: { type: 'string', pattern: UNIT.source } });
  ajv.addKeyword({ keyword: 'x-sensitive', metaSchema: { enum: [...SENSITIVITY] } });
  ajv.addKeyword({ keyword: 'x-description', metaSchema: { type: 'string' } });
  ajv.addKeyword({ keyword: 'x-retention-days', metaSchema: { type: 'integer', minimum: 1, maximum: 36_500 } });

  return function compile(document: SchemaDocument): CompiledSchema {
    const [, name, version] = SCHEMA_ID.exec(String(document.$id)) ?? [];
    if (!name || !version) throw invalid(`$id must be "name@version" (lower-case name, version a positive integer), got ${JSON.stringify(document.$id)}`);
    checkShape(document);
    let validate: ValidateFunction;
    try {
      const { $id: _id, ...body } = document;
      validate = ajv.compile(body);
    } catch (cause) {
      throw invalid(`the schema does not compile: ${(cause as Error).message}`);
    }
    return {
      name,
      version: Number(version),
      validate: (data) => (validate(data) ? [] : (validate.errors ?? []).map((e) => problemOf(e, data))),
    };
  };
}

function invalid(message: string): PlatformError {
  return new PlatformError('BULWARK_ERR_SCHEMA_INVALID', message);
}

/** Object at the top, a unit on every number, no remote references, bounded depth. */
function checkShape(doc: SchemaDocument): void {
  if (doc.type !== 'object' || typeof doc.properties !== 'object' || doc.properties === null || Object.keys(doc.properties).length === 0) {
    throw invalid('a telemetry schema is an object schema with at least one property');
  }
  for (const [field, spec] of Object.entries(doc.properties)) {
    const types = [spec.type].flat();
    if ((types.includes('number') || types.includes('integer')) && typeof spec['x-unit'] !== 'string') {
      throw invalid(`numeric field "${field}" needs an explicit unit ("x-unit": "degC", "ms", "%", ...)`);
    }
  }
  const walk = (node: unknown, depth: number): void => {
    if (depth > MAX_DEPTH) throw invalid(`the schema nests deeper than ${MAX_DEPTH} levels`);
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && (typeof v !== 'string' || !v.startsWith('#'))) throw invalid('only local "$ref" (starting with #) is allowed');
      walk(v, depth + 1);
    }
  };
  walk(doc, 0);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

function at(data: unknown, pointer: string): unknown {
  let node = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function problemOf(e: ErrorObject, data: unknown): SchemaProblem {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: `${e.instancePath}/${String(p.missingProperty)}`, expected: 'a value (required)', got: 'nothing' };
    case 'additionalProperties':
      return { path: `${e.instancePath}/${String(p.additionalProperty)}`, expected: 'no such field', got: describe(at(data, `${e.instancePath}/${String(p.additionalProperty)}`)) };
    case 'type':
      return { path: e.instancePath || '/', expected: `type ${String(p.type)}`, got: describe(at(data, e.instancePath)) };
    default:
      return { path: e.instancePath || '/', expected: `${e.keyword} ${e.message ?? ''}`.trim(), got: describe(at(data, e.instancePath)) };
  }
}
