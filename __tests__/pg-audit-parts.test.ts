/**
 * How the PostgreSQL audit-log digest of a restored copy is split between two sessions: the
 * manifest's chunk starts, cut at a chunk boundary into parts that cover the key range once.
 * No server needed; the digests the parts give are compared with one session's in
 * postgres.test.ts.
 */
import { expect, it } from 'vitest'
import { cutAtBoundaries } from '../src/engines/postgres/audit.js'

it('the key range is cut at boundaries into parts that cover it once', () => {
  const starts = ['10', '20', '30', '40', '50']
  expect(cutAtBoundaries(starts, 2)).toEqual([
    { starts: ['10', '20'], below: true, end: '30' },
    { starts: ['30', '40', '50'], below: false, end: null },
  ])
  expect(cutAtBoundaries(['10'], 2)).toEqual([{ starts: ['10'], below: true, end: null }])
  expect(cutAtBoundaries([], 2)).toEqual([{ starts: [], below: true, end: null }])
})
