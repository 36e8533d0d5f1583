/**
 * A backup of OmniAI holds every user's conversations. Manifests, reports, summaries, drill logs
 * and log lines hold identifiers, counts and digests, never row contents; backups, manifests and
 * scratch copies are readable by their owner only.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { renderSummary } from '../src/report/report.js'
import { demoWorkspace, run, sql } from './helpers.js'

const SECRETS = {
  email: 'ceo.private@omniai-secret.test',
  message: 'MERGER-PLAN-DO-NOT-SHARE-7f3a',
  token: 'csrf-6c1e9b2d4a-private',
  password: 'pbkdf2$very-secret-hash',
  audit: 'exported-payroll-2026.csv',
}

describe('data protection', () => {
  it('no row value reaches a manifest, report, summary, drill log or log line', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 20, auditRows: 50 })
    await sql(
      db,
      `INSERT INTO users (id, email, display_name, password_hash, created_at) VALUES (999, '${SECRETS.email}', 'CEO', '${SECRETS.password}', '2026-11-26T00:00:00Z')`,
    )
    await sql(db, `INSERT INTO sessions VALUES ('s_999', 999, '${SECRETS.token}', '2027-01-01')`)
    await sql(
      db,
      `INSERT INTO conversations (id, user_id, title, created_at, updated_at) VALUES ('c_secret', 999, 'board', '2026-11-26T00:00:00Z', '2099-01-01T00:00:00Z')`,
    )
    await sql(
      db,
      `INSERT INTO messages (conversation_id, role, content, tokens, created_at) VALUES ('c_secret', 'user', '${SECRETS.message}', 5, '2099-01-01T00:00:00Z')`,
    )
    await sql(
      db,
      `INSERT INTO audit_logs (ts, actor_id, action, target, details) VALUES ('2026-11-26T01:00:00Z', 999, 'export', '${SECRETS.audit}', '{"file":"${SECRETS.audit}"}')`,
    )

    const drillLog = path.join(dir, 'drills.jsonl')
    const outputs: string[] = []
    for (const mode of ['backup', 'verify', 'drill']) {
      const { report, log } = await run(
        mode,
        {
          'connection-string': db,
          'backup-dir': backups,
          'drill-log': drillLog,
          'report-file': path.join(dir, `${mode}.json`),
        },
        dir,
      )
      expect(report.ok, JSON.stringify(report.checks)).toBe(true)
      outputs.push(JSON.stringify(report), renderSummary(report), ...log.lines, ...log.warnings)
    }
    for (const name of await fs.readdir(backups)) {
      if (name.endsWith('.json')) outputs.push(await fs.readFile(path.join(backups, name), 'utf8'))
    }
    outputs.push(await fs.readFile(drillLog, 'utf8'))
    for (const mode of ['backup', 'verify', 'drill'])
      outputs.push(await fs.readFile(path.join(dir, `${mode}.json`), 'utf8'))
    const everything = outputs.join('\n')
    // The spot-check did look at the secret conversation (it is the most recent) ...
    expect(everything).toContain('c_secret')
    // ... and recorded only digests of it.
    for (const [what, value] of Object.entries(SECRETS))
      expect(everything, what).not.toContain(value)
    // The backup itself does hold them: the search above would have found them.
    expect(
      (
        await fs.readFile(
          path.join(
            backups,
            (await fs.readdir(backups)).find((f) => f.endsWith('.db'))!,
          ),
        )
      ).includes(SECRETS.message),
    ).toBe(true)
  })

  it.skipIf(process.platform === 'win32')(
    'backups, manifests, reports and drill logs are owner-only',
    async () => {
      const { dir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
      const report = path.join(dir, 'report.json')
      await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups, 'report-file': report },
        dir,
      )
      await run('drill', { 'backup-dir': backups, 'report-file': report }, dir)
      expect((await fs.stat(backups)).mode & 0o777).toBe(0o700)
      for (const name of await fs.readdir(backups)) {
        expect([name, (await fs.stat(path.join(backups, name))).mode & 0o777]).toEqual([
          name,
          0o600,
        ])
      }
      expect((await fs.stat(report)).mode & 0o777).toBe(0o600)
    },
  )
})
