import type { Config } from '../config.js'
import { UserError } from '../errors.js'
import type { Engine, EngineName } from './engine.js'
import { SqliteEngine } from './sqlite.js'

/** The engine for `name`, reading its source from the config. */
export function createEngine(name: EngineName, config: Config): Engine {
  switch (name) {
    case 'sqlite':
      return new SqliteEngine(config.connectionString)
    case 'postgres':
      throw new UserError(
        'engine: postgres is not available in this version of omniai-backups. Fix: use a SQLite connection-string until the PostgreSQL engine ships.',
      )
  }
}
