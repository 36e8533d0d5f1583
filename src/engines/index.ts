import type { Config } from '../options/config.js'
import type { Engine, EngineName } from './engine.js'
import { SqliteEngine } from './sqlite/engine.js'

/**
 * The engine for `name`, reading its source from the config. The PostgreSQL engine (and the
 * `pg` client) is loaded only when it is the one asked for: a SQLite run never pays for it.
 */
export async function createEngine(name: EngineName, config: Config): Promise<Engine> {
  switch (name) {
    case 'sqlite':
      return new SqliteEngine(config.connectionString)
    case 'postgres': {
      const { PostgresEngine } = await import('./postgres/engine.js')
      return new PostgresEngine(config)
    }
  }
}
