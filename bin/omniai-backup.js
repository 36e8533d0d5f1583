#!/usr/bin/env node
// `npx omniai-backup backup|verify|drill --flag value`: the same bundle the action runs.
//
// The Node.js check comes first, before the bundle is loaded: on an older Node the bundle would
// get part-way (better-sqlite3 13 crashes Node 20, which has no node:sqlite either) before
// failing. One line and exit code 2, as for any other input the CLI cannot run with. Written
// for any Node that can load this file: no syntax newer than the check itself.
const REQUIRED_MAJOR = 24 // package.json "engines": ">=24"; __tests__/bin.test.ts keeps them equal

const major = Number(process.versions.node.split('.')[0])
if (!(major >= REQUIRED_MAJOR)) {
  process.stderr.write(
    `Error: omniai-backup needs Node.js ${REQUIRED_MAJOR} or newer; this is Node.js ${process.versions.node} (${process.execPath}). Fix: install Node.js ${REQUIRED_MAJOR} (e.g. nvm install ${REQUIRED_MAJOR}) and run it with that; the GitHub Action needs nothing, it runs on the runner's node${REQUIRED_MAJOR}.\n`,
  )
  process.exitCode = 2
} else {
  await import('../dist/index.js')
}
