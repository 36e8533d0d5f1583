import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkCsp, POLICY } from '../src/gate/csp.js'
import { UserError } from '../src/util/errors.js'
import { tempDir } from './helpers.js'

const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'csp')
const fixture = (name: string) => path.join(FIXTURES, name)

describe('checkCsp', () => {
  it('passes a hardened policy and lists its directives', async () => {
    const r = await checkCsp({ file: fixture('good.html'), strict: true })
    expect(r.findings).toEqual([])
    expect(r.check).toMatchObject({ name: 'csp', ok: true })
    expect(r.check.detail).toContain('9 directives, no weaknesses found')
    expect(r.directives.map((d) => d.name)).toEqual([
      'default-src',
      'script-src',
      'style-src',
      'img-src',
      'connect-src',
      'font-src',
      'object-src',
      'base-uri',
      'form-action',
    ])
    expect(r.directives.find((d) => d.name === 'img-src')?.values).toEqual([
      "'self'",
      'data:',
      'https:',
    ])
    expect(r.markdown).toContain('✅ **passed**')
    expect(r.markdown).toContain("| img-src | 'self' data: https: |  |")
  })

  it('fails when there is no CSP meta', async () => {
    const r = await checkCsp({ file: fixture('none.html'), strict: false })
    expect(r.check.ok).toBe(false)
    expect(r.check.detail).toMatch(/none\.html: no policy, 1 failing: no <meta http-equiv=/)
    expect(r.directives).toEqual([])
    expect(r.findings).toEqual([
      {
        directive: POLICY,
        problem: expect.stringMatching(/^no <meta http-equiv="Content-Security-Policy">; add one/),
        severity: 'fail',
      },
    ])
    expect(r.markdown).toContain('❌ **failed**')
  })

  it('fails on a report-only meta, which browsers ignore', async () => {
    const r = await checkCsp({ file: fixture('report-only.html'), strict: false })
    expect(r.check.ok).toBe(false)
    expect(r.check.detail).toMatch(/Report-Only meta at line 4 does nothing/)
  })

  it('fails when the content is empty', async () => {
    const r = await checkCsp({ file: fixture('empty-content.html'), strict: false })
    expect(r.check.ok).toBe(false)
    expect(r.findings).toEqual([
      {
        directive: POLICY,
        problem: expect.stringMatching(/line 5 has an empty content attribute/),
        severity: 'fail',
        line: 5,
      },
    ])
  })

  it('fails when the meta is in <body>, where browsers ignore it', async () => {
    const r = await checkCsp({ file: fixture('in-body.html'), strict: false })
    expect(r.check.ok).toBe(false)
    expect(r.directives).toEqual([])
    expect(r.findings).toEqual([
      {
        directive: POLICY,
        problem: expect.stringMatching(/line 12 is inside <body>, where browsers ignore it/),
        severity: 'fail',
        line: 12,
      },
    ])
  })

  it('accepts a meta written between </head> and <body>: the parser puts it in <head>', async () => {
    const r = await checkCsp({ file: fixture('after-head.html'), strict: true })
    expect(r.findings).toEqual([])
    expect(r.check.ok).toBe(true)
  })

  // Each file holds one weakness and nothing else that would be reported.
  const weaknesses: [file: string, directive: string, problem: RegExp][] = [
    ['unsafe-inline.html', 'script-src', /^'unsafe-inline' lets injected inline scripts/],
    [
      'unsafe-inline-fallback.html',
      'default-src',
      /^'unsafe-inline' \(script-src is not set, so scripts fall back to default-src\)/,
    ],
    ['unsafe-eval.html', 'script-src', /^'unsafe-eval' allows eval\(\)/],
    ['wildcard.html', 'script-src', /^\* lets scripts load from a source an attacker can supply/],
    ['https-scheme.html', 'script-src', /^https: lets scripts load/],
    ['data-script.html', 'script-src', /^data: lets scripts load/],
    ['object-src-missing.html', 'object-src', /^is not set, and default-src is not 'none'/],
    ['default-src-missing.html', 'default-src', /^is not set, so every fetch directive/],
    ['after-script.html', POLICY, /^<script> at line 4 comes before the policy/],
  ]

  it.each(weaknesses)('%s: warns by default', async (file, directive, problem) => {
    const r = await checkCsp({ file: fixture(file), strict: false })
    expect(r.findings).toEqual([
      // The line of the policy's meta: where an annotation on the pull request points.
      { directive, problem: expect.stringMatching(problem), severity: 'warn', line: 5 },
    ])
    expect(r.check.ok).toBe(true)
    expect(r.check.detail).toMatch(/1 warning \(strict is off\)/)
    expect(r.markdown).toContain('⚠️')
  })

  it.each(weaknesses)('%s: fails when strict', async (file, directive, problem) => {
    const r = await checkCsp({ file: fixture(file), strict: true })
    expect(r.findings).toEqual([
      { directive, problem: expect.stringMatching(problem), severity: 'fail', line: 5 },
    ])
    expect(r.check.ok).toBe(false)
    expect(r.check.detail).toMatch(/1 failing: /)
    expect(r.markdown).toContain('❌')
  })

  it('keeps the first of a repeated directive, as browsers do, and warns even when strict', async () => {
    const r = await checkCsp({ file: fixture('duplicate.html'), strict: true })
    expect(r.directives.find((d) => d.name === 'script-src')?.values).toEqual(["'self'"])
    expect(r.directives.filter((d) => d.name === 'script-src')).toHaveLength(1)
    // The ignored copy's 'unsafe-inline' is not a weakness: browsers never see it.
    expect(r.findings).toEqual([
      {
        directive: 'script-src',
        problem: expect.stringMatching(
          /^is repeated; browsers keep the first and ignore this one \('self' 'unsafe-inline' https:\/\/cdn\.example\.com\)/,
        ),
        severity: 'warn',
        line: 5,
      },
    ])
    expect(r.check.ok).toBe(true)
  })

  it('warns that frame-ancestors and report-uri do nothing in a meta policy, even when strict', async () => {
    const r = await checkCsp({ file: fixture('frame-ancestors.html'), strict: true })
    expect(r.findings.map((f) => [f.directive, f.severity])).toEqual([
      ['frame-ancestors', 'warn'],
      ['report-uri', 'warn'],
    ])
    expect(r.findings[0]!.problem).toMatch(/^is ignored in a <meta> policy/)
    expect(r.check.ok).toBe(true)
  })

  it("says 'unsafe-inline' beside a hash is ignored, and does not fail on it when strict", async () => {
    const r = await checkCsp({ file: fixture('unsafe-inline-nonce.html'), strict: true })
    expect(r.findings).toEqual([
      {
        directive: 'script-src',
        problem: expect.stringMatching(/ignored by CSP2\+ browsers .* not a weakness/),
        severity: 'warn',
        line: 5,
      },
    ])
    expect(r.check.ok).toBe(true)
  })

  it('reads upper-case tag, attribute, directive and keyword names', async () => {
    const r = await checkCsp({ file: fixture('uppercase.html'), strict: true })
    expect(r.directives).toEqual([
      { name: 'default-src', values: ["'SELF'"] },
      { name: 'script-src', values: ["'SELF'", "'UNSAFE-EVAL'"] },
      { name: 'object-src', values: ["'NONE'"] },
    ])
    // 'NONE' counts as 'none' (no object-src finding); 'UNSAFE-EVAL' as 'unsafe-eval'.
    expect(r.findings).toEqual([
      {
        directive: 'script-src',
        problem: expect.stringMatching(/^'unsafe-eval'/),
        severity: 'fail',
        line: 7,
      },
    ])
  })

  it('escapes | and HTML in the summary table', async () => {
    const r = await checkCsp({ file: fixture('escaping.html'), strict: false })
    const row = r.markdown.split('\n').find((l) => l.startsWith('| img-src'))
    expect(row).toBe('| img-src | https://img.example.com/a\\|b &lt;b&gt;x&lt;/b&gt; |  |')
    expect(r.markdown).not.toContain('<b>')
    // Every table row splits into exactly three cells.
    for (const line of r.markdown.split('\n').filter((l) => l.startsWith('|')))
      expect(line.split(/(?<!\\)\|/).length - 2).toBe(3)
  })

  it('names csp-file when the file is missing', async () => {
    const missing = fixture('no-such.html')
    const err = await checkCsp({ file: missing, strict: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UserError)
    expect((err as Error).message).toBe(
      `csp-file: ${missing} does not exist. Fix: set csp-file to the HTML file that carries the policy, e.g. frontend/index.html, or to none to turn the check off.`,
    )
  })

  it('names csp-file and the error code when the file cannot be read', async () => {
    // A symlink to itself: ELOOP, which root cannot read either (unlike a chmod 000 file).
    const loop = path.join(await tempDir(), 'index.html')
    await fs.symlink(loop, loop)
    const err = await checkCsp({ file: loop, strict: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UserError)
    expect((err as Error).message).toBe(
      `csp-file: cannot read ${loop} (ELOOP). Fix: make it readable by the job's user, or set csp-file to another page, or to none.`,
    )
  })

  it('names csp-file when it is a folder', async () => {
    const err = await checkCsp({ file: FIXTURES, strict: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UserError)
    expect((err as Error).message).toMatch(/^csp-file: .* is a folder\. Fix: /)
  })
})
