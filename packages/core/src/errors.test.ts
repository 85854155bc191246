import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { ERROR_CODES, PlatformError } from './index.js';

const doc = readFileSync(new URL('../../../docs/reference/errors.md', import.meta.url), 'utf8');

it('documents every error code in docs/reference/errors.md, and nothing else', () => {
  const inDoc = new Set([...doc.matchAll(/`(BULWARK_ERR_[A-Z_]+)`/g)].map((m) => m[1]));
  for (const code of Object.keys(ERROR_CODES)) assert.ok(inDoc.has(code), `${code} is not documented`);
  for (const code of inDoc) assert.ok(code && code in ERROR_CODES, `${code} is documented but does not exist`);
});

it('gives every error its category from the code table', () => {
  const e = new PlatformError('BULWARK_ERR_RATE_LIMITED', 'slow down', { retryAfterSeconds: 3 });
  assert.equal(e.category, 'rate_limited');
  assert.equal(e.retryAfterSeconds, 3);
  assert.ok(Object.keys(ERROR_CODES).every((c) => c.startsWith('BULWARK_ERR_')));
});
