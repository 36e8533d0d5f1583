/**
 * pytest's JUnit XML report (`--junitxml`, `junit_family=xunit1`) read into the outcome of each
 * test. The report is the source of truth for counts and failures: pytest's terminal output is
 * for people and changes with plugins and verbosity.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser'

export type Outcome = 'passed' | 'failed' | 'error' | 'skipped'

/** A problem or skip, where the report says it happened. */
export interface JUnitEntry {
  /** pytest's node id when the report gives the file (`tests/test_auth.py::TestLogin::test_x`). */
  name: string
  /** Relative to pytest's rootdir, as the report gives it; null when it does not. */
  file: string | null
  /** 1-based line of the test's definition; null when the report does not give it. */
  line: number | null
  message: string
  /**
   * failure: an assertion or exception in the test; error: in setup or teardown; collection:
   * a test file that could not be collected; internal: pytest itself crashed; skip / xfail.
   */
  kind: 'failure' | 'error' | 'collection' | 'internal' | 'skip' | 'xfail'
}

export interface JUnitResults {
  /** Distinct tests, each counted once by its worst outcome (a failed test whose teardown also errors is failed). */
  tests: number
  passed: number
  failed: number
  /** Tests that errored in setup or teardown, plus collection and internal errors. */
  errors: number
  skipped: number
  /** One entry per failure or error element, in report order. */
  problems: JUnitEntry[]
  skips: JUnitEntry[]
}

type Node = Record<string, unknown>

const ARRAYS = new Set(['testsuites', 'testsuite', 'testcase', 'failure', 'error', 'skipped'])

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  textNodeName: '#text',
  alwaysCreateTextNode: true,
  // Every value stays a string: a test named "1e3" must not become 1000.
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => ARRAYS.has(name),
  // pytest writes a newline in a message attribute as &#10;. Since 5.7, fast-xml-parser decodes
  // character references only with this option (NaturalIntelligence/fast-xml-parser#829); it
  // also knows HTML's named entities, which pytest never writes.
  htmlEntities: true,
})

const str = (v: unknown): string => (typeof v === 'string' ? v : '')
const nodes = (v: unknown): Node[] =>
  Array.isArray(v) ? v.map((x) => (typeof x === 'object' && x !== null ? (x as Node) : {})) : []

/** Every <testcase> under the root, at any depth of <testsuites>/<testsuite>. */
function testcases(node: Node): Node[] {
  const out: Node[] = nodes(node.testcase)
  for (const child of [...nodes(node.testsuites), ...nodes(node.testsuite)])
    out.push(...testcases(child))
  return out
}

/** The element's message attribute, else the first line of its text. */
function messageOf(el: Node): string {
  const message = str(el.message).trim()
  if (message) return message
  return (
    str(el['#text'])
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? ''
  )
}

/**
 * What went wrong in a collection or internal error, whose message attribute is only
 * "collection failure" or "internal error": the traceback's last `E   ` line, else its last line.
 */
function errorLine(el: Node): string {
  const lines = str(el['#text'])
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  const e = lines.filter((l) => /^E\s/.test(l)).at(-1)
  return (e ? e.replace(/^E\s+/, '') : lines.at(-1)) || messageOf(el)
}

/**
 * pytest's node id from xunit1's attributes: `classname` is the dotted module path plus any
 * classes, `file` the module's path, so the classes are what `classname` adds to the module.
 */
function nodeId(classname: string, name: string, file: string): string {
  if (!file) return classname ? `${classname}.${name}` : name
  const module = file.replace(/\.py$/, '').replace(/[\\/]/g, '.')
  const classes =
    classname.startsWith(`${module}.`) && classname.length > module.length + 1
      ? classname.slice(module.length + 1).split('.')
      : []
  return [file, ...classes, name].join('::')
}

const RANK: Record<Outcome, number> = { passed: 0, skipped: 1, error: 2, failed: 3 }

/** Parses the report; throws an Error naming what is wrong when it is not a JUnit XML report. */
export function parseJUnit(xml: string): JUnitResults {
  const valid = XMLValidator.validate(xml)
  if (valid !== true) {
    throw new Error(`not well-formed XML (line ${valid.err.line}: ${valid.err.msg})`)
  }
  const root = parser.parse(xml) as Node
  if (!('testsuites' in root) && !('testsuite' in root))
    throw new Error('no <testsuites> or <testsuite> element')
  const results: JUnitResults = {
    tests: 0,
    passed: 0,
    failed: 0,
    errors: 0,
    skipped: 0,
    problems: [],
    skips: [],
  }
  // pytest writes a test twice when it fails and its teardown errors too; count it once.
  const outcomes = new Map<string, Outcome>()
  for (const tc of testcases(root)) {
    const name = str(tc.name)
    // An interrupted run leaves a <testcase> with no name: nothing ran there.
    if (!name) continue
    const classname = str(tc.classname)
    const file = str(tc.file) || null
    // xunit1 gives the 0-based line of the test's definition (its first decorator).
    const line = /^\d+$/.test(str(tc.line)) ? Number(tc.line) + 1 : null
    // A file-level entry (a collection error, a module skipped as a whole) has no classname.
    const where = {
      name: classname ? nodeId(classname, name, file ?? '') : (file ?? name),
      file,
      line,
    }
    const failures = nodes(tc.failure)
    const errors = nodes(tc.error)
    const skipped = nodes(tc.skipped)
    // pytest reports a crash of its own as classname "pytest", name "internal", and a file it
    // could not collect as an error with an empty classname: neither is a selected test.
    if (classname === 'pytest' && name === 'internal') {
      for (const e of errors)
        results.problems.push({ ...where, message: errorLine(e), kind: 'internal' })
      results.errors++
      continue
    }
    if (classname === '' && errors.length > 0) {
      for (const e of errors) {
        results.problems.push({ ...where, message: errorLine(e), kind: 'collection' })
      }
      results.errors++
      continue
    }
    for (const f of failures)
      results.problems.push({ ...where, message: messageOf(f), kind: 'failure' })
    for (const e of errors)
      results.problems.push({ ...where, message: messageOf(e), kind: 'error' })
    for (const s of skipped) {
      results.skips.push({
        ...where,
        message: messageOf(s),
        kind: str(s.type) === 'pytest.xfail' ? 'xfail' : 'skip',
      })
    }
    const outcome: Outcome = failures.length
      ? 'failed'
      : errors.length
        ? 'error'
        : skipped.length
          ? 'skipped'
          : 'passed'
    const key = `${classname}\0${name}\0${file ?? ''}`
    const before = outcomes.get(key)
    if (!before || RANK[outcome] > RANK[before]) outcomes.set(key, outcome)
  }
  for (const outcome of outcomes.values()) {
    results.tests++
    if (outcome === 'passed') results.passed++
    else if (outcome === 'failed') results.failed++
    else if (outcome === 'error') results.errors++
    else results.skipped++
  }
  return results
}
