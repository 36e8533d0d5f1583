#!/usr/bin/env node
// Prints one version's notes from CHANGELOG.md (Keep a Changelog): the lines between its
// `## [X.Y.Z] - YYYY-MM-DD` heading and the next `## ` heading. The release workflow passes them
// to `gh release create`. A missing or empty section fails, so no release goes out without notes.
//
//   node scripts/release-notes.mjs 1.2.3 [CHANGELOG.md]   (a leading v is accepted)
import { readFileSync } from 'node:fs'

const [arg, file = 'CHANGELOG.md'] = process.argv.slice(2)
const version = (arg ?? '').replace(/^v/, '')
const fail = (message) => {
  process.stderr.write(`Error: ${message}\n`)
  process.exit(1)
}

if (!/^\d+\.\d+\.\d+$/.test(version)) {
  fail(`"${arg ?? ''}" is not a version. Fix: node scripts/release-notes.mjs X.Y.Z`)
}
let text
try {
  text = readFileSync(file, 'utf8')
} catch (err) {
  fail(`cannot read ${file}: ${err.message}`)
}
const lines = text.replace(/\r\n?/g, '\n').split('\n')
const heading = new RegExp(`^## \\[${version.replace(/\./g, '\\.')}\\] - \\d{4}-\\d{2}-\\d{2}\\s*$`)
const start = lines.findIndex((line) => heading.test(line))
if (start < 0) {
  fail(
    `${file} has no "## [${version}] - YYYY-MM-DD" section. Fix: move the Unreleased notes under that heading, dated the release day.`,
  )
}
let end = lines.findIndex((line, i) => i > start && /^## /.test(line))
if (end < 0) end = lines.length
// Link references at the end of the file are not part of the section.
const body = lines
  .slice(start + 1, end)
  .filter((line) => !/^\[[^\]]+\]: \S+$/.test(line))
  .join('\n')
  .trim()
if (!/^[-*] \S/m.test(body)) fail(`the ${version} section of ${file} lists no changes.`)
// GitHub shows every newline of a release's notes as a line break: one line per paragraph or item.
const unwrapped = body.replace(/\n(?![\n#]|[-*] )[ \t]*/g, ' ')
process.stdout.write(`${unwrapped}\n`)
