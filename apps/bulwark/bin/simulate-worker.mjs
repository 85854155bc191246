#!/usr/bin/env node
// A `bulwark simulate` worker process (forked by the simulator to use another core): the
// TypeScript loader as in bulwark.mjs, then the worker's loop.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

const tsconfig = fileURLToPath(new URL('../../../tsconfig.json', import.meta.url));
register({ tsconfig: existsSync(tsconfig) ? tsconfig : false });
await import('../src/simulate/worker-main.ts');
