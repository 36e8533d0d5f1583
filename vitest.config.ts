import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__tests__/**/*.test.ts'],
    globalSetup: ['__tests__/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests share one machine with the build; files run in parallel, tests in a file in order.
    pool: 'forks',
  },
})
