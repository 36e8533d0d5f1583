/**
 * The Content-Security-Policy hardening check (runbook, "Security Configuration"): reads the
 * policy a `<meta http-equiv="Content-Security-Policy">` in the front end's HTML delivers, the
 * way a browser would, and reports what it allows that an attacker could use.
 *
 * The HTML goes through parse5, which builds the same tree a browser does (a `<meta>` written
 * between `</head>` and `<body>` still lands in `<head>`; one in `<noscript>` is text), because
 * where the element ends up decides whether the policy applies at all.
 */
import { NotRegularFile, readRegularFile } from '../util/fs.js'
import type { DefaultTreeAdapterTypes as T } from 'parse5'
import type { Check } from '../checks/checks.js'
import { UserError } from '../util/errors.js'

/** The action input naming the HTML file; used in error messages. */
export const CSP_FILE_INPUT = 'csp-file'

/** The check's name in the report and the failed-checks output. */
export const CSP_CHECK = 'csp'

export interface CspOptions {
  /** The HTML file that carries the policy, e.g. frontend/index.html. */
  file: string
  /** Weaknesses fail the check instead of warning. */
  strict: boolean
}

export interface CspDirective {
  /** Lower case, as browsers compare it. */
  name: string
  /** Source expressions as written. */
  values: string[]
}

export interface CspFinding {
  /** The directive it concerns, or `(policy)` for the element itself. */
  directive: string
  problem: string
  severity: 'fail' | 'warn'
  /** The line of the element it concerns (the policy's meta for a directive); absent for none. */
  line?: number
}

export interface CspResult {
  check: Check
  /** The policy as browsers parse it: later duplicates dropped. Empty when there is none. */
  directives: CspDirective[]
  findings: CspFinding[]
  /** A section for the job summary: a status line and a Directive | Sources | Finding table. */
  markdown: string
}

export const POLICY = '(policy)'

/** CSP3 and the still-shipped older directives; anything else is ignored by browsers. */
const KNOWN = new Set([
  'base-uri',
  'block-all-mixed-content',
  'child-src',
  'connect-src',
  'default-src',
  'fenced-frame-src',
  'font-src',
  'form-action',
  'frame-ancestors',
  'frame-src',
  'img-src',
  'manifest-src',
  'media-src',
  'object-src',
  'prefetch-src',
  'report-to',
  'report-uri',
  'require-trusted-types-for',
  'sandbox',
  'script-src',
  'script-src-attr',
  'script-src-elem',
  'style-src',
  'style-src-attr',
  'style-src-elem',
  'trusted-types',
  'upgrade-insecure-requests',
  'webrtc',
  'worker-src',
])

/** Directives the HTML spec removes from a policy delivered by `<meta>`. */
const IGNORED_IN_META: Record<string, string> = {
  'frame-ancestors': 'clickjacking protection needs the HTTP header (or X-Frame-Options)',
  'report-uri': 'violation reports need the HTTP header',
  sandbox: 'sandboxing needs the HTTP header or the iframe sandbox attribute',
}

/**
 * Parses a serialized policy as CSP3 §2.2.1 does: split at `;`, trim, the name is the first
 * word in lower case, the values the remaining words; a repeated directive is dropped.
 */
export function parsePolicy(text: string): {
  directives: CspDirective[]
  duplicates: CspDirective[]
} {
  const directives: CspDirective[] = []
  const duplicates: CspDirective[] = []
  for (const token of text.split(';')) {
    const words = token.split(/[\t\n\f\r ]+/).filter(Boolean)
    if (words.length === 0) continue
    const directive = { name: words[0]!.toLowerCase(), values: words.slice(1) }
    if (directives.some((d) => d.name === directive.name)) duplicates.push(directive)
    else directives.push(directive)
  }
  return { directives, duplicates }
}

const isNonceOrHash = (v: string) => /^'(nonce-|sha256-|sha384-|sha512-)/i.test(v)

/** Sources that let any site (or the page's own data) supply a script. */
function isWildcard(v: string): boolean {
  const s = v.toLowerCase()
  if (['*', 'http:', 'https:', 'data:'].includes(s)) return true
  // A host-source whose host is `*` (https://*, *:443) matches every host.
  return /^([a-z][a-z0-9+.-]*:\/\/)?\*(:(\d+|\*))?(\/.*)?$/.test(s)
}

function scriptFindings(
  name: string,
  values: string[],
  from: string,
  weak: CspFinding['severity'],
) {
  const findings: CspFinding[] = []
  const lower = values.map((v) => v.toLowerCase())
  const note = from === name ? '' : ` (${name} is not set, so scripts fall back to ${from})`
  const nonceOrHash = values.some(isNonceOrHash)
  const strictDynamic = lower.includes("'strict-dynamic'")
  if (lower.includes("'unsafe-inline'")) {
    findings.push(
      nonceOrHash
        ? {
            directive: from,
            problem: `'unsafe-inline'${note} is ignored by CSP2+ browsers because a nonce or hash is present; it only keeps old browsers working, and is not a weakness`,
            severity: 'warn',
          }
        : {
            directive: from,
            problem: `'unsafe-inline'${note} lets injected inline scripts and event handlers run; use nonces or hashes instead`,
            severity: weak,
          },
    )
  }
  if (lower.includes("'unsafe-eval'")) {
    findings.push({
      directive: from,
      problem: `'unsafe-eval'${note} allows eval() and new Function(); remove it (use 'wasm-unsafe-eval' if only WebAssembly needs it)`,
      severity: weak,
    })
  }
  const wild = values.filter(isWildcard)
  if (wild.length) {
    findings.push(
      nonceOrHash && strictDynamic
        ? {
            directive: from,
            problem: `${wild.join(' ')}${note} is ignored by CSP3 browsers because of 'strict-dynamic'; it only keeps old browsers working`,
            severity: 'warn',
          }
        : {
            directive: from,
            problem: `${wild.join(' ')}${note} lets scripts load from ${wild.length === 1 ? 'a source' : 'sources'} an attacker can supply; list the script hosts, or use nonces or hashes`,
            severity: weak,
          },
    )
  }
  return findings
}

/** What a parsed policy lets an attacker do. `strict` turns weaknesses into failures. */
export function evaluatePolicy(
  directives: CspDirective[],
  duplicates: CspDirective[],
  strict: boolean,
): CspFinding[] {
  const weak: CspFinding['severity'] = strict ? 'fail' : 'warn'
  const get = (name: string) => directives.find((d) => d.name === name)
  const isNone = (d: CspDirective | undefined) =>
    d !== undefined && d.values.length === 1 && d.values[0]!.toLowerCase() === "'none'"
  const findings: CspFinding[] = []
  const defaultSrc = get('default-src')
  if (!defaultSrc) {
    findings.push({
      directive: 'default-src',
      problem:
        "is not set, so every fetch directive not listed (connect-src, frame-src, …) allows anything; add default-src 'self'",
      severity: weak,
    })
  }
  const scriptSrc = get('script-src') ?? defaultSrc
  if (scriptSrc)
    findings.push(...scriptFindings('script-src', scriptSrc.values, scriptSrc.name, weak))
  else {
    findings.push({
      directive: 'script-src',
      problem:
        "is not set, nor is default-src, so scripts may load from anywhere; add script-src 'self'",
      severity: weak,
    })
  }
  for (const name of ['script-src-elem', 'script-src-attr']) {
    const d = get(name)
    if (d) findings.push(...scriptFindings(name, d.values, name, weak))
  }
  const objectSrc = get('object-src')
  if (objectSrc && !isNone(objectSrc)) {
    findings.push({
      directive: 'object-src',
      problem: `is ${objectSrc.values.join(' ') || 'empty'}, not 'none': <object> and <embed> can load active content; set object-src 'none'`,
      severity: weak,
    })
  } else if (!objectSrc && !isNone(defaultSrc)) {
    findings.push({
      directive: 'object-src',
      problem: `is not set, and default-src is not 'none', so <object> and <embed> ${defaultSrc ? 'fall back to default-src' : 'may load anything'}; add object-src 'none'`,
      severity: weak,
    })
  }
  for (const d of directives) {
    const why = IGNORED_IN_META[d.name]
    if (why) {
      findings.push({
        directive: d.name,
        problem: `is ignored in a <meta> policy: ${why}; send it as a Content-Security-Policy response header`,
        severity: 'warn',
      })
    } else if (!KNOWN.has(d.name)) {
      findings.push({
        directive: d.name,
        problem: 'is not a CSP directive, so browsers ignore it; check the spelling',
        severity: 'warn',
      })
    }
  }
  for (const d of duplicates) {
    findings.push({
      directive: d.name,
      problem: `is repeated; browsers keep the first and ignore this one (${d.values.join(' ') || 'no sources'}), so merge them`,
      severity: 'warn',
    })
  }
  return findings
}

interface MetaPolicy {
  content: string | null
  line: number
  /** Where the parser put it: `head`, `body`, or another parent. */
  parent: string
  element: T.Element
}

const attr = (el: T.Element, name: string) => el.attrs.find((a) => a.name === name)?.value

const lineOf = (node: T.Element) => node.sourceCodeLocation?.startLine ?? 0

/** Elements that load or run something the policy should cover. */
function isSubresource(el: T.Element): boolean {
  if (el.tagName === 'script' || el.tagName === 'style') return true
  if (el.tagName !== 'link') return false
  const rel = (attr(el, 'rel') ?? '').toLowerCase().split(/\s+/)
  return rel.some((r) => ['stylesheet', 'modulepreload', 'preload'].includes(r))
}

/** The CSP meta elements, and every element in document order (template contents skipped). */
function findMetas(document: T.Document) {
  const metas: MetaPolicy[] = []
  const reportOnly: number[] = []
  const order: T.Element[] = []
  const walk = (node: T.ParentNode) => {
    for (const child of node.childNodes) {
      if (!('tagName' in child)) continue
      order.push(child)
      if (child.tagName === 'meta') {
        // http-equiv is matched ASCII case-insensitively and not trimmed, as browsers do.
        const equiv = attr(child, 'http-equiv')?.toLowerCase()
        if (equiv === 'content-security-policy') {
          metas.push({
            content: attr(child, 'content') ?? null,
            line: lineOf(child),
            parent:
              child.parentNode && 'tagName' in child.parentNode ? child.parentNode.tagName : '',
            element: child,
          })
        } else if (equiv === 'content-security-policy-report-only') reportOnly.push(lineOf(child))
      }
      walk(child)
    }
  }
  walk(document)
  return { metas, reportOnly, order }
}

async function readHtml(file: string): Promise<string> {
  try {
    return (await readRegularFile(file)).toString('utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new UserError(
        `${CSP_FILE_INPUT}: ${file} does not exist. Fix: set ${CSP_FILE_INPUT} to the HTML file that carries the policy, e.g. frontend/index.html, or to none to turn the check off.`,
      )
    }
    if (code === 'EISDIR' || (err instanceof NotRegularFile && err.kind === 'a folder')) {
      throw new UserError(
        `${CSP_FILE_INPUT}: ${file} is a folder. Fix: name the HTML file in it, e.g. ${file.replace(/\/+$/, '')}/index.html.`,
      )
    }
    throw new UserError(
      `${CSP_FILE_INPUT}: cannot read ${file} (${err instanceof NotRegularFile ? err.what : (code ?? (err as Error).message)}). Fix: make it readable by the job's user, or set ${CSP_FILE_INPUT} to another page, or to none.`,
    )
  }
}

const EXAMPLE = `<meta http-equiv="Content-Security-Policy" content="default-src 'self'; object-src 'none'">`

/** Reads `file`, finds its meta CSP and reports what the policy allows. */
export async function checkCsp(opts: CspOptions): Promise<CspResult> {
  const html = await readHtml(opts.file)
  // parse5 is loaded here, by the gate alone: it would add a tenth to every mode's start-up.
  const { parse } = await import('parse5')
  const weak: CspFinding['severity'] = opts.strict ? 'fail' : 'warn'
  const { metas, reportOnly, order } = findMetas(parse(html, { sourceCodeLocationInfo: true }))
  const findings: CspFinding[] = []
  const inHead = metas.filter((m) => m.parent === 'head')
  // The HTML spec skips a meta with no content or an empty one before parsing it.
  const enforced = inHead.filter((m) => m.content)
  const chosen = enforced[0]
  const misplacedSeverity = chosen ? 'warn' : 'fail'
  for (const m of metas) {
    if (m.parent !== 'head') {
      findings.push({
        directive: POLICY,
        problem: `the meta at line ${m.line} is inside <${m.parent || 'template'}>, where browsers ignore it; move it into <head>`,
        severity: misplacedSeverity,
        line: m.line,
      })
    } else if (!m.content) {
      findings.push({
        directive: POLICY,
        problem: `the meta at line ${m.line} has ${m.content === null ? 'no' : 'an empty'} content attribute, so browsers ignore it; put the policy in content`,
        severity: misplacedSeverity,
        line: m.line,
      })
    }
  }
  if (metas.length === 0) {
    const ro = reportOnly.length
      ? ` (the Content-Security-Policy-Report-Only meta at line ${reportOnly[0]} does nothing: report-only works only as a response header)`
      : ''
    findings.push({
      directive: POLICY,
      problem: `no <meta http-equiv="Content-Security-Policy">${ro}; add one to <head>, e.g. ${EXAMPLE}`,
      severity: 'fail',
    })
  }
  let directives: CspDirective[] = []
  if (chosen) {
    const parsed = parsePolicy(chosen.content!)
    directives = parsed.directives
    if (directives.length === 0) {
      findings.push({
        directive: POLICY,
        problem: `the meta at line ${chosen.line} holds no directives; put the policy in content, e.g. default-src 'self'; object-src 'none'`,
        severity: 'fail',
        line: chosen.line,
      })
    } else {
      for (const f of evaluatePolicy(directives, parsed.duplicates, opts.strict))
        findings.push({ ...f, line: chosen.line })
      const before = order.slice(0, order.indexOf(chosen.element)).filter(isSubresource)
      if (before.length) {
        const first = before[0]!
        findings.push({
          directive: POLICY,
          problem: `<${first.tagName}> at line ${lineOf(first)}${before.length > 1 ? ` and ${before.length - 1} more` : ''} come${before.length > 1 ? '' : 's'} before the policy, which covers only what follows it; put the meta first in <head>`,
          severity: weak,
          line: chosen.line,
        })
      }
    }
    for (const extra of enforced.slice(1)) {
      findings.push({
        directive: POLICY,
        problem: `the meta at line ${extra.line} is a second policy; browsers enforce both, and only the first (line ${chosen.line}) is analysed here; merge them into one`,
        severity: 'warn',
        line: extra.line,
      })
    }
  }
  const check = summarize(opts.file, directives, findings, opts.strict)
  return {
    check,
    directives,
    findings,
    markdown: renderCsp(opts.file, directives, findings, check),
  }
}

/** Findings listed in the check's detail; the table has them all. */
const MAX_LISTED = 5

function summarize(
  file: string,
  directives: CspDirective[],
  findings: CspFinding[],
  strict: boolean,
): Check {
  const fails = findings.filter((f) => f.severity === 'fail')
  const warns = findings.filter((f) => f.severity === 'warn')
  const parts = [
    directives.length
      ? `${file}: ${directives.length} ${directives.length === 1 ? 'directive' : 'directives'}`
      : `${file}: no policy`,
  ]
  if (fails.length) parts.push(`${fails.length} failing`)
  if (warns.length) parts.push(`${warns.length} ${warns.length === 1 ? 'warning' : 'warnings'}`)
  if (findings.length === 0) parts.push('no weaknesses found')
  const listed = [...fails, ...warns].slice(0, MAX_LISTED).map(describeFinding)
  const more = findings.length > MAX_LISTED ? `; and ${findings.length - MAX_LISTED} more` : ''
  const mode = !fails.length && warns.length && !strict ? ' (strict is off)' : ''
  return {
    name: CSP_CHECK,
    ok: fails.length === 0,
    detail: `${parts.join(', ')}${mode}${listed.length ? `: ${listed.join('; ')}${more}` : ''}`,
  }
}

const describeFinding = (f: CspFinding) =>
  f.directive === POLICY ? f.problem : `${f.directive} ${f.problem}`

/** Text for a Markdown table cell: no table breaks, no HTML, no emphasis. */
export function mdCell(s: string): string {
  return s
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\s*\n\s*/g, ' ')
}

const ICON = { fail: '❌', warn: '⚠️' }

function renderCsp(
  file: string,
  directives: CspDirective[],
  findings: CspFinding[],
  check: Check,
): string {
  const cellFor = (name: string) =>
    findings
      .filter((f) => f.directive === name)
      .map((f) => `${ICON[f.severity]} ${mdCell(f.problem)}`)
      .join('<br>')
  const fails = findings.filter((f) => f.severity === 'fail').length
  const status = check.ok
    ? `✅ **passed**${findings.length ? ` with ${findings.length} ${findings.length === 1 ? 'warning' : 'warnings'}` : ''}`
    : `❌ **failed**: ${fails} failing ${fails === 1 ? 'finding' : 'findings'}`
  const lines = [`### Content-Security-Policy in ${mdCell(file)}`, '', status, '']
  lines.push('| Directive | Sources | Finding |', '| --- | --- | --- |')
  const names = new Set(directives.map((d) => d.name))
  for (const d of directives)
    lines.push(`| ${mdCell(d.name)} | ${mdCell(d.values.join(' '))} | ${cellFor(d.name)} |`)
  const rest = [...new Set(findings.map((f) => f.directive))].filter((n) => !names.has(n))
  for (const name of rest) {
    const sources = name === POLICY ? '' : '(not set)'
    lines.push(`| ${mdCell(name)} | ${sources} | ${cellFor(name)} |`)
  }
  lines.push('')
  return lines.join('\n')
}
