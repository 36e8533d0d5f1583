import type { Engine, EngineName, EngineOptions } from './engine.js'
import { SqliteEngine } from './sqlite/engine.js'

/**
 * The engine for `name`, given its own options. The PostgreSQL engine (and the
 * `pg` client) is loaded only when it is the one asked for: a SQLite run never pays for it.
 */
export async function createEngine(name: EngineName, options: EngineOptions): Promise<Engine> {
  switch (name) {
    case 'sqlite':
      return new SqliteEngine(options.connectionString)
    case 'postgres': {
      const { PostgresEngine } = await import('./postgres/engine.js')
      return new PostgresEngine(options)
    }
  }
}
