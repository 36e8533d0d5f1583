/**
 * A restore re-creates a violated foreign key from the definition its manifest records, so that
 * text is executed: only pg_get_constraintdef's grammar of one foreign key may pass. ALTER TABLE
 * takes a comma-separated list of actions, and a looser check let a planted manifest run
 * `ALTER COLUMN ... USING f()` with the restoring role's rights (found in review, run on PG 15).
 */
import { describe, expect, it } from 'vitest'
import { FOREIGN_KEY_DEFINITION } from '../src/engines/postgres/engine.js'

describe('the foreign-key definitions a restore will execute', () => {
  it.each([
    'FOREIGN KEY (conversation_id) REFERENCES conversations(id)',
    'FOREIGN KEY (conversation_id) REFERENCES conversations(id) ON DELETE CASCADE',
    'FOREIGN KEY (a, b) REFERENCES app.parent(x, y) MATCH FULL ON UPDATE RESTRICT ON DELETE SET NULL (a)',
    'FOREIGN KEY ("Odd, name") REFERENCES "Other ""T"""(id) DEFERRABLE INITIALLY DEFERRED',
    'FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET DEFAULT NOT DEFERRABLE',
  ])('passes what PostgreSQL writes: %s', (definition) => {
    expect(FOREIGN_KEY_DEFINITION.test(definition)).toBe(true)
  })

  it.each([
    // The attack the old check let through: a second ALTER TABLE action after a comma.
    'FOREIGN KEY (a) REFERENCES t(id) NOT VALID, ALTER COLUMN body TYPE text USING public.evil(body), ADD CONSTRAINT z FOREIGN KEY (a) REFERENCES t(id)',
    'FOREIGN KEY (a) REFERENCES t(id), OWNER TO attacker',
    'FOREIGN KEY (a) REFERENCES t(id) ON DELETE CASCADE, DISABLE TRIGGER ALL',
    "FOREIGN KEY (a) REFERENCES t(pg_read_file('/etc/passwd'))",
    'FOREIGN KEY (a) REFERENCES t(id) -- comment',
    'FOREIGN KEY (a) REFERENCES t(id); DROP TABLE users',
    'FOREIGN KEY (a) REFERENCES t(id)\nALTER COLUMN x TYPE text',
    'CHECK (evil())',
  ])('refuses anything else: %s', (definition) => {
    expect(FOREIGN_KEY_DEFINITION.test(definition)).toBe(false)
  })
})
