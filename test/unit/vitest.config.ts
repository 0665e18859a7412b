import { defineConfig } from 'vitest/config'

// Unit tests: fast, no sockets, no child processes of the daemon.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 30_000,
    pool: 'threads'
  }
})
