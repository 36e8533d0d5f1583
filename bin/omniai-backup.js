#!/usr/bin/env node
// `npx omniai-backup backup|verify|drill --flag value`: the same bundle the action runs.
import '../dist/index.js'
