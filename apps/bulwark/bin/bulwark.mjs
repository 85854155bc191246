#!/usr/bin/env node
// Entry point installed as node_modules/.bin/bulwark. There is no build step: register
// tsx's loader in this process (no child process, so signals and exit codes stay ours),
// then run the TypeScript sources. The repository's tsconfig is named explicitly so that
// a tsconfig.json in the caller's working directory cannot change how Bulwark compiles.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

const tsconfig = fileURLToPath(new URL('../../../tsconfig.json', import.meta.url));
register({ tsconfig: existsSync(tsconfig) ? tsconfig : false });
await import('../src/main.ts');
