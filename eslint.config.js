import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
      'no-restricted-properties': ['error',
        { object: 'process', property: 'env', message: 'Only apps/* read the environment; take settings from the config.' },
        { object: 'process', property: 'exit', message: 'Only apps/* exit the process.' }],
    },
  },
  {
    files: ['apps/**', 'examples/**', 'scripts/**', 'e2e/**', 'bench/**', '**/*.test.ts', '**/testing/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
