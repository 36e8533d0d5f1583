import { defineConfig } from 'vitest/config'

/**
 * Tests that start no server and no daemon (no PostgreSQL, no S3 gateway, no gpg agent, no
 * backend): `npm run test:unit` runs them alone, in seconds. Every other file is an integration
 * test, and only those start PostgreSQL (__tests__/global-setup.ts). `npm test` runs both.
 */
const UNIT = [
  'actions',
  'audit-pages',
  'audit-pages-node',
  'config',
  'csp',
  'data-protection',
  'docs',
  'fk-grammar',
  'heap-flags',
  'layout',
  'log',
  'pg-tools',
  'retention',
  'sqlite-checks',
  'startup',
  'tools',
  'workflows',
].map((name) => `__tests__/${name}.test.ts`)

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests share one machine with the build; files run in parallel, tests in a file in order.
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['__tests__/**/*.test.ts'],
          exclude: UNIT,
          globalSetup: ['__tests__/global-setup.ts'],
        },
      },
    ],
  },
})
