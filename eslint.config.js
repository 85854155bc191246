import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import bulwark from './scripts/eslint/context-boundaries.js';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.bulwark/**', 'results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'off',
      eqeqeq: ['error', 'always'],
      // Only apps/ read the environment or exit the process (CONVENTIONS.md §7).
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Only apps/* read the environment; take settings from the config.' }, { object: 'process', property: 'exit', message: 'Only apps/* exit the process.' }],
    },
  },
  {
    // Type-aware rules, chosen rather than the whole recommendedTypeChecked set
    // (docs/decisions/0033-lint-rules.md): promises nobody waits for, promises where a
    // callback's result is ignored, awaiting what is not a promise, and casts that change nothing.
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test(), describe() and it() return promises the runner itself waits for.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
    },
  },
  {
    // A server context is reached from another only through its index.ts (CONVENTIONS.md §1).
    // Top-level files of packages/server/src are the composition root and testing/ holds
    // fixtures that wire whole servers: the rule lets both reach further.
    files: ['packages/server/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    plugins: { bulwark },
    rules: { 'bulwark/context-boundaries': ['error', { root: 'packages/server/src', open: ['testing'] }] },
  },
  {
    files: ['apps/**', 'examples/**', 'scripts/**', 'e2e/**', 'bench/**', '**/*.test.ts', '**/testing/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // Every CLI call starts a process: the server package and the device contract's schemas
    // take seconds to load, so the CLI's commands import them on demand (await import) or
    // from light subpaths, and only their types statically.
    files: ['apps/bulwark/src/**'],
    ignores: ['**/*.test.ts', 'apps/bulwark/src/simulate/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            { name: '@bulwark/server', allowTypeImports: true, message: 'Load the server on demand (await import) in the command that needs it: the CLI starts for every call.' },
            { name: '@bulwark/protocol', allowTypeImports: true, message: "Import @bulwark/protocol/device-id or /firmware: the package root loads the device contract's schemas." },
            { name: '@bulwark/agent', allowTypeImports: true, message: 'Load the agent on demand (await import) in the command that needs it.' },
          ],
        },
      ],
    },
  },
);
