import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { NEXT_STEPS } from './runbooks.js';

const dir = new URL('../../../../docs/runbooks/', import.meta.url);

describe('runbooks', () => {
  it('every alert type has its runbook page, listed in the index, with a first step', () => {
    const index = readFileSync(new URL('README.md', dir), 'utf8');
    for (const type of Object.keys(NEXT_STEPS)) {
      const page = new URL(`${type}.md`, dir);
      assert.ok(existsSync(page), `docs/runbooks/${type}.md is missing`);
      assert.match(readFileSync(page, 'utf8'), /^## First step$/m, `${type}.md has no "First step" section`);
      assert.ok(index.includes(`(${type}.md)`), `docs/runbooks/README.md does not list ${type}`);
    }
  });
});
