import type { SchemaDocument } from './schemas.js';

/**
 * Whether devices sending the previous version's data stay valid, and whether readers of
 * stored data keep their meaning, under the next version: no field may change its type or
 * unit, no required field may disappear, and no new field may become required.
 */
export function compatibilityProblems(previous: SchemaDocument, next: SchemaDocument): string[] {
  const problems: string[] = [];
  const prevRequired = new Set(previous.required ?? []);
  const nextRequired = new Set(next.required ?? []);
  for (const [field, before] of Object.entries(previous.properties)) {
    const after = next.properties[field];
    if (!after) {
      if (prevRequired.has(field)) problems.push(`required field "${field}" was removed`);
      continue;
    }
    if (JSON.stringify(before.type) !== JSON.stringify(after.type)) problems.push(`field "${field}" changed type from ${JSON.stringify(before.type)} to ${JSON.stringify(after.type)}`);
    if (before['x-unit'] !== after['x-unit']) problems.push(`field "${field}" changed unit from ${before['x-unit'] ?? 'none'} to ${after['x-unit'] ?? 'none'}`);
  }
  for (const field of nextRequired) {
    if (!prevRequired.has(field)) problems.push(`field "${field}" became required; devices on the previous version do not send it`);
  }
  return problems;
}
