import { defineConfig } from 'vitest/config'

// End-to-end tests: the real compiled CLI and daemons as child processes, real files,
// real TCP on loopback. `npm test` builds first (pretest).
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/e2e/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false
  }
})
