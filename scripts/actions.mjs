// Writes what is made from the input and output tables (src/options/inputs.ts), from the
// compiled lib/: the root action.yml, <mode>/action.yml for each sub-action, dist/<mode>.js (each
// sub-action's entry into the one bundle) and the README's input and output tables.
// Run by `npm run bundle` after tsc and ncc; __tests__/actions.test.ts checks the results.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { renderActionYml, renderEntry, renderReadme } = await import(
  path.join(root, 'lib/options/action-yml.js')
)
const { MODES } = await import(path.join(root, 'lib/options/inputs.js'))

const write = (file, text) => {
  const target = path.join(root, file)
  fs.mkdirSync(path.dirname(target), { recursive: true })
  fs.writeFileSync(target, text)
}
write('action.yml', renderActionYml(null))
for (const mode of MODES) {
  write(`${mode}/action.yml`, renderActionYml(mode))
  write(`dist/${mode}.js`, renderEntry(mode))
}
write('README.md', renderReadme(fs.readFileSync(path.join(root, 'README.md'), 'utf8')))
console.log(
  `action.yml, ${MODES.map((m) => `${m}/action.yml`).join(', ')}, dist entries, README tables`,
)
