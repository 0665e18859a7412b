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
    // two files at a time: most of an e2e test is waiting on daemons, and the suite must
    // stay well under 15 minutes on a 2-core machine; every file makes its own temporary
    // directories, ephemeral ports and uniquely named network namespaces
    fileParallelism: true,
    maxWorkers: 2
  }
})
