// Kept in step with package.json by the test suite (__tests__/version.test.ts).
export const TOOL = 'omniai-backups'
export const VERSION = '0.1.0'
