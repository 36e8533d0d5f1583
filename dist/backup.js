// The backup action (backup/action.yml): the one bundle, index.js, with its mode fixed by this
// file's name (src/entry.ts). Made by scripts/actions.mjs.
import './index.js'
