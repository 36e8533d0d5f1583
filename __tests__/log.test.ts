import { describe, expect, it } from 'vitest'
import { groupingLog, type LogSink } from '../src/util/log.js'

/** A sink that keeps every call in order, as the Actions log would show them. */
function recorder() {
  const out: string[] = []
  const sink: LogSink = {
    info: (m) => void out.push(m),
    warning: (m) => void out.push(`warning: ${m}`),
    startGroup: (name) => void out.push(`::group::${name}`),
    endGroup: () => void out.push('::endgroup::'),
    annotate: (level, m, { file, line }) => void out.push(`${level} ${file}:${line}: ${m}`),
  }
  return { out, log: groupingLog(sink) }
}

describe('groupingLog', () => {
  it('a group whose body logs nothing leaves nothing in the log', async () => {
    const { out, log } = recorder()
    const value = await log.group('Checks', async () => 42)
    expect(value).toBe(42)
    expect(out).toEqual([])
  })

  it('a group that logs opens at its first line and closes after its body (positive control)', async () => {
    const { out, log } = recorder()
    log.info('before')
    await log.group('Snapshot', async () => {
      log.info('copied 3 pages')
      log.warning('slow disk')
    })
    log.info('after')
    expect(out).toEqual([
      'before',
      '::group::Snapshot',
      'copied 3 pages',
      'warning: slow disk',
      '::endgroup::',
      'after',
    ])
  })

  it('an annotation opens the group too', async () => {
    const { out, log } = recorder()
    await log.group('CSP', async () =>
      log.annotate!('warning', 'weak', { file: 'index.html', line: 5 }),
    )
    expect(out).toEqual(['::group::CSP', 'warning index.html:5: weak', '::endgroup::'])
  })

  it('a group that throws still closes, and the next one starts clean', async () => {
    const { out, log } = recorder()
    await expect(
      log.group('Restore', async () => {
        log.info('restoring')
        throw new Error('disk full')
      }),
    ).rejects.toThrow('disk full')
    await log.group('Empty', async () => {})
    expect(out).toEqual(['::group::Restore', 'restoring', '::endgroup::'])
  })

  it('nested: the outer group opens with the first line inside the inner one', async () => {
    const { out, log } = recorder()
    await log.group('Safety backup', async () => {
      await log.group('Quiet', async () => {})
      await log.group('Snapshot', async () => log.info('copied'))
    })
    expect(out).toEqual([
      '::group::Safety backup',
      '::group::Snapshot',
      'copied',
      '::endgroup::',
      '::endgroup::',
    ])
  })
})
