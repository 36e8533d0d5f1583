import { describe, expect, it, vi } from 'vitest'
import { hasCommand, reportMissing } from './tools.js'

describe('what the tests need from the system', () => {
  const gpg = { what: 'gpg', tests: 'the gpg tests', install: 'sudo apt-get install gnupg' }

  it('a missing part is one line saying what will not run and how to install it', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    try {
      reportMissing([gpg], {})
      expect(warn.mock.calls).toEqual([
        [
          'not found: gpg, so the gpg tests will not run (reported as skipped). Install: sudo apt-get install gnupg',
        ],
      ])
    } finally {
      warn.mockRestore()
    }
  })

  it('under CI=true a missing part fails the run instead', () => {
    expect(() => reportMissing([gpg], { CI: 'true' })).toThrow(
      /^CI=true and a part the tests need is missing:\nnot found: gpg/,
    )
    // Positive control: nothing missing, nothing said, also under CI.
    expect(() => reportMissing([], { CI: 'true' })).not.toThrow()
  })

  it('finds commands that exist and not those that do not', () => {
    expect(hasCommand(process.execPath)).toBe(true)
    expect(hasCommand('omniai-no-such-command')).toBe(false)
  })
})
