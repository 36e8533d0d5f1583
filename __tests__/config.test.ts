import { describe, expect, it } from 'vitest'
import { parseDuration } from '../src/config.js'
import { configFor } from './helpers.js'

const fails = (mode: string, inputs: Record<string, string>) => () =>
  configFor(mode, inputs, '/tmp')

describe('inputs', () => {
  it('defaults match the runbook', () => {
    const c = configFor('backup', {}, '/runner-temp')
    expect(c).toMatchObject({
      engine: 'sqlite',
      connectionString: 'omniai.db',
      backupDir: 'backups',
      prefix: 'omniai',
      conversationsTable: 'conversations',
      auditTable: 'audit_logs',
      spotCheckCount: 5,
      drillLog: 'backups/drill-log.jsonl',
      maxBackupAgeSeconds: null,
      reportFile: '/runner-temp/omniai-backup-report.json',
      scratchDir: '/runner-temp',
    })
  })

  it('infers postgres from a URL', () => {
    expect(configFor('verify', { 'connection-string': 'postgresql://u:p@h/db' }, '/t').engine).toBe(
      'postgres',
    )
  })

  // Each bad input: one line, naming the input, saying how to fix it.
  it.each([
    [
      'restorex',
      {},
      /^mode: "restorex" is not one of backup, verify, drill, gate, restore, smoke\. Fix:/,
    ],
    ['', {}, /^mode: not set\. Fix:/],
    ['backup', { engine: 'mysql' }, /^engine: "mysql" is not one of sqlite, postgres/],
    [
      'backup',
      { engine: 'postgres', 'connection-string': 'omniai.db' },
      /^connection-string: engine is postgres but/,
    ],
    [
      'backup',
      { 'spot-check-count': '0' },
      /^spot-check-count: "0" is not a whole number from 1 to 100/,
    ],
    ['backup', { 'spot-check-count': 'five' }, /^spot-check-count:/],
    ['drill', { 'max-backup-age': '26' }, /^max-backup-age: "26" is not a duration\. Fix: .*26h/],
    ['drill', { 'max-backup-age': '-1h' }, /^max-backup-age:/],
    [
      'drill',
      { 'max-restore-seconds': 'soon' },
      /^max-restore-seconds: "soon" is not a number of seconds/,
    ],
    ['drill', { 'max-restore-seconds': '0' }, /^max-restore-seconds:/],
    ['backup', { prefix: '../etc/x' }, /^prefix: "\.\.\/etc\/x" may only hold/],
    ['backup', { 'audit-table': 'a\nb' }, /^audit-table: .* is not a table name/],
  ])('mode %j with %j is refused', (mode, inputs, message) => {
    expect(fails(mode, inputs)).toThrow(message)
    try {
      fails(mode, inputs)()
    } catch (err) {
      expect((err as Error).message).not.toContain('\n')
    }
  })

  it('parses durations', () => {
    expect(parseDuration('26h', 'x')).toBe(93600)
    expect(parseDuration('2d', 'x')).toBe(172800)
    expect(parseDuration('90m', 'x')).toBe(5400)
    expect(parseDuration('1w', 'x')).toBe(604800)
    expect(parseDuration('0.5h', 'x')).toBe(1800)
  })

  it('none turns off a table check', () => {
    const c = configFor(
      'backup',
      { 'audit-table': 'none', 'conversations-table': 'none', 'drill-log': 'none' },
      '/t',
    )
    expect(c.auditTable).toBeNull()
    expect(c.conversationsTable).toBeNull()
    expect(c.drillLog).toBeNull()
  })
})
