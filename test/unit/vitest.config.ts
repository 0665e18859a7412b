import { defineConfig } from 'vitest/config'

// Unit tests: fast, no sockets, no child processes of the daemon.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 30_000,
    // forks, not threads: a test that spawns programs (python3) could leave a worker thread
    // spinning at exit, and the run never ended; a fork is killed at teardown whatever it does
    pool: 'forks'
  }
})
