import { main } from './entry.js'

await main(process.argv.slice(2))
