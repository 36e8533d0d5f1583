import type { Config } from '../config.js'
import { PostgresEngine } from './postgres.js'
import type { Engine, EngineName } from './engine.js'
import { SqliteEngine } from './sqlite.js'

/** The engine for `name`, reading its source from the config. */
export function createEngine(name: EngineName, config: Config): Engine {
  switch (name) {
    case 'sqlite':
      return new SqliteEngine(config.connectionString)
    case 'postgres':
      return new PostgresEngine(config)
  }
}
