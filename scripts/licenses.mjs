#!/usr/bin/env node
// Writes dist/licenses.txt: the license of every package the bundle holds, read from webpack's
// stats for the build (ncc --stats-out), with each package's own license file. ncc's --license
// lists only the packages whose license it can find on its own (one, for this bundle).
//   node scripts/licenses.mjs <stats.json> <out.txt>
import * as fs from 'node:fs'
import * as path from 'node:path'

const [statsFile, out] = process.argv.slice(2)
if (!statsFile || !out) {
  console.error('usage: node scripts/licenses.mjs <stats.json> <out.txt>')
  process.exit(2)
}
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const stats = JSON.parse(fs.readFileSync(statsFile, 'utf8'))

// Every package folder a bundled module comes from, the innermost node_modules/<pkg> of its path.
const folders = new Set()
const visit = (modules) => {
  for (const m of modules ?? []) {
    for (const name of [m.name, m.identifier]) {
      const match = /^(?:.*!)?(.*node_modules\/(?:@[^/]+\/)?[^/]+)/.exec(
        (name ?? '').replace(/\\/g, '/'),
      )
      if (match && !match[1].includes('node_modules/@vercel/ncc')) {
        const dir = path.resolve(root, match[1].replace(/^.*?(node_modules\/)/, '$1'))
        if (fs.existsSync(path.join(dir, 'package.json'))) folders.add(dir)
      }
    }
    visit(m.modules)
  }
}
visit(stats.modules)
for (const child of stats.children ?? []) visit(child.modules)

const LICENSE_FILE = /^(licen[cs]e|copying|notice)(\.(md|txt|markdown))?$/i
const entries = [...folders].map((dir) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  const license =
    typeof pkg.license === 'string'
      ? pkg.license
      : (pkg.license?.type ?? pkg.licenses?.map((l) => l.type).join(' OR ') ?? 'UNKNOWN')
  const texts = fs
    .readdirSync(dir)
    .filter((f) => LICENSE_FILE.test(f))
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8').trim())
  return { name: pkg.name, version: pkg.version, license, texts }
})
entries.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version))

// Said as it is: a package that states no license (buffers@0.1.1, pulled in by unzip-stream)
// is listed as such, never given one it did not state.
for (const e of entries) {
  if (e.license === 'UNKNOWN' && e.texts.length === 0) {
    e.license = 'no license stated in the package (no license field, no license file)'
    console.error(`warning: ${e.name}@${e.version} states no license`)
  }
}
const text = entries
  .map((e) =>
    [`${e.name}@${e.version}`, e.license, ...(e.texts.length ? ['', ...e.texts] : [])].join('\n'),
  )
  .join('\n\n' + '-'.repeat(72) + '\n\n')
fs.writeFileSync(out, text + '\n')
console.log(`${out}: ${entries.length} packages`)
