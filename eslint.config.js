// The one linter for the whole tree (src, tests, the testbed package, benchmarks, examples):
// ESLint's recommended rules and typescript-eslint's, with Node's globals. `npm run lint`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeGlobals = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'URLSearchParams',
    'performance',
    'globalThis',
    'fetch',
    'structuredClone',
    'queueMicrotask',
    'AbortController',
    'AbortSignal',
    'TextDecoder',
    'TextEncoder',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'clearImmediate',
    'NodeJS',
  ].map((g) => [g, 'readonly']),
);

export default tseslint.config(
  { ignores: ['**/dist/', '**/node_modules/', '**/.tmp/', 'coverage/', 'jobstore-*/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: nodeGlobals },
    rules: {
      // `_name` marks a parameter or binding kept on purpose; a caught error may go unused
      // a binding read by a closure before its one assignment cannot be const
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // CommonJS files (the s3rver child process)
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { ...nodeGlobals, require: 'readonly', module: 'writable', __dirname: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
