/**
 * The linter of `npm run lint`, in the flavour of js-libp2p's aegir (eslint-config-ipfs,
 * i.e. standard-with-typescript), on flat config:
 *
 * - `neostandard({ ts: true })`, the flat-config successor of standard: the style the code
 *   already has (no semicolons, a space before a function's parens, single quotes, …) and
 *   standard's JS rules, ported to TypeScript where typescript-eslint has a twin.
 * - `no-void` allows `void` as a statement, as standard-with-typescript does: `void p` is
 *   how the code says "this promise runs on its own" (no-floating-promises accepts it).
 * - On .ts files, with type information (`projectService`: tsconfig.json for src/,
 *   scripts/tsconfig.json, test/tsconfig.json), the type-aware rules of
 *   standard-with-typescript that catch mistakes, each chosen because the code already
 *   nearly passes it:
 *   - promises: no-floating-promises, no-misused-promises, await-thenable, return-await
 *     ('always': an awaited return keeps the function in the stack trace), only-throw-error,
 *     prefer-promise-reject-errors;
 *   - strict-boolean-expressions with standard-with-typescript's options (no string, number
 *     or nullable in a condition: `if (count)` hides 0 and NaN, `if (name)` hides '');
 *   - explicit return types on functions and on what a module exports
 *     (explicit-function-return-type with standard's allowances for expressions and typed
 *     callbacks, explicit-module-boundary-types): STYLE.md asks for them;
 *   - types: consistent-type-imports, consistent-type-exports, no-import-type-side-effects
 *     (with verbatimModuleSyntax an import of a type must say so), no-explicit-any
 *     (`unknown` and a check instead; not in test/, see below), no-non-null-assertion, no-unnecessary-type-assertion,
 *     restrict-template-expressions, prefer-nullish-coalescing, prefer-optional-chain.
 *
 * Left out on purpose, with what they would cost today:
 * - no-unnecessary-condition (~100): most are checks on values that the types say are set
 *   but that come from outside (bad input is refused, never trusted: STYLE.md);
 * - require-await (~65): `async` on a function is part of its contract, awaited or not;
 * - no-unsafe-* (~200, mostly parsed JSON in tests), array-type and
 *   non-nullable-type-assertion-style (~220, style only);
 * - no-deprecated (~30: zod 4's `message` option, now `error`) and
 *   switch-exhaustiveness-check: worth a change of their own, not a lint flag day.
 *
 * testnet/ (the demo apps), bin/ and scripts/*.mjs are plain ESM JavaScript: neostandard's
 * JS rules only.
 */
import neostandard from 'neostandard'
import tseslint from 'typescript-eslint'

export default [
  ...neostandard({ ts: true, noJsx: true, ignores: ['dist/**', 'coverage/**', '.tmp/**'] }),
  {
    name: 'upgossip/js',
    rules: {
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    name: 'upgossip/ts-type-aware',
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/return-await': ['error', 'always'],
      '@typescript-eslint/only-throw-error': 'error',
      'prefer-promise-reject-errors': 'off', // the typed twin below knows an Error when it sees one
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/strict-boolean-expressions': ['error', {
        allowString: false,
        allowNumber: false,
        allowNullableObject: false,
        allowNullableBoolean: false,
        allowNullableString: false,
        allowNullableNumber: false,
        allowAny: false
      }],
      '@typescript-eslint/explicit-function-return-type': ['error', {
        allowExpressions: true,
        allowHigherOrderFunctions: true,
        allowTypedFunctionExpressions: true,
        allowDirectConstAssertionInArrowFunctions: true
      }],
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'separate-type-imports' }],
      '@typescript-eslint/consistent-type-exports': 'error',
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      '@typescript-eslint/restrict-template-expressions': 'error',
      '@typescript-eslint/prefer-nullish-coalescing': 'error',
      '@typescript-eslint/prefer-optional-chain': 'error'
    }
  },
  {
    // tests read fields of the JSON an app or the control API answered straight off an
    // `any` (`(await peer.call(…)).value`): a wrong guess fails the test, not a user
    name: 'upgossip/test',
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off'
    }
  }
]
