/**
 * A generated OmniAI-like database: users, sessions, conversations with messages and
 * attachments (two levels of foreign keys), tags (a composite key), an audit log, a trigger and
 * a view. Deterministic for a given size, so tests can name rows, and in WAL mode like a live
 * OmniAI database.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { openSqlite } from '../engines/sqlite/driver.js'
import { makeDirs } from '../util/fs.js'

export interface DemoOptions {
  conversations: number
  messagesPerConversation: number
  /** Characters of text per message; raise it to grow the database (benchmarks). */
  messageChars: number
  auditRows: number
}

export const DEMO_DEFAULTS: DemoOptions = {
  conversations: 200,
  messagesPerConversation: 12,
  messageChars: 400,
  auditRows: 3000,
}

export const DEMO_SCHEMA = `
PRAGMA foreign_keys = ON;
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  display_name TEXT,
  password_hash TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf_token TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
CREATE TABLE conversations (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  model TEXT NOT NULL DEFAULT 'omni-1',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX conversations_user_updated ON conversations(user_id, updated_at);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
  content TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, created_at);
CREATE TABLE message_attachments (
  id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  filename TEXT NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE conversation_tags (
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (conversation_id, tag)
) WITHOUT ROWID;
CREATE TABLE audit_logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts TEXT NOT NULL,
  actor_id INTEGER REFERENCES users(id),
  action TEXT NOT NULL,
  target TEXT,
  ip TEXT,
  details TEXT
);
CREATE INDEX audit_logs_ts ON audit_logs(ts);
CREATE TRIGGER messages_touch_conversation AFTER INSERT ON messages BEGIN
  UPDATE conversations SET updated_at = NEW.created_at WHERE id = NEW.conversation_id;
END;
CREATE VIEW conversation_stats AS
  SELECT c.id, c.user_id, count(m.id) AS messages, sum(m.tokens) AS tokens
  FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id;
`

const WORDS =
  'the backup restores and we knew that before we needed it model answer question context token stream'.split(
    ' ',
  )
const BASE = Date.parse('2026-01-01T00:00:00Z')

/** A small deterministic generator (mulberry32), so the same options give the same database. */
function random(seed: number) {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function conversationId(n: number): string {
  return `c_${String(n).padStart(6, '0')}`
}

/** Creates `file` (which must not exist) and fills it. */
export async function generateDemoDatabase(
  file: string,
  options: Partial<DemoOptions> = {},
): Promise<void> {
  const o = { ...DEMO_DEFAULTS, ...options }
  await makeDirs(path.dirname(path.resolve(file)))
  // openSqlite refuses a missing file (a typo must not create an empty database), so create it;
  // 'wx' refuses to overwrite an existing database.
  await fs.writeFile(file, '', { flag: 'wx' })
  const db = await openSqlite(file, { readonly: false })
  const rnd = random(42)
  const text = (n: number) => {
    let s = ''
    while (s.length < n) s += WORDS[Math.floor(rnd() * WORDS.length)] + ' '
    return s.slice(0, n)
  }
  const iso = (minutes: number) => new Date(BASE + minutes * 60_000).toISOString()
  try {
    db.exec('PRAGMA journal_mode = WAL')
    db.exec(DEMO_SCHEMA)
    db.exec('BEGIN')
    const users = Math.max(1, Math.ceil(o.conversations / 10))
    for (let u = 1; u <= users; u++) {
      db.run(
        'INSERT INTO users VALUES (?, ?, ?, ?, ?)',
        BigInt(u),
        `user${u}@example.test`,
        `User ${u}`,
        `pbkdf2$${text(24)}`,
        iso(u),
      )
      db.run(
        'INSERT INTO sessions VALUES (?, ?, ?, ?)',
        `s_${u}`,
        BigInt(u),
        text(16),
        // Long expired: a restore of the demo is not held up by logins (tests add live ones).
        iso(60 * 24),
      )
    }
    let message = 0
    for (let c = 1; c <= o.conversations; c++) {
      const id = conversationId(c)
      const start = c * 90
      db.run(
        'INSERT INTO conversations (id, user_id, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
        id,
        BigInt(1 + (c % users)),
        text(30),
        iso(start),
        iso(start),
      )
      for (let m = 0; m < o.messagesPerConversation; m++) {
        message++
        db.run(
          'INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)',
          BigInt(message),
          id,
          m % 2 ? 'assistant' : 'user',
          text(o.messageChars),
          BigInt(1 + Math.floor(rnd() * 500)),
          iso(start + m),
        )
        if (message % 7 === 0) {
          db.run(
            'INSERT INTO message_attachments (message_id, filename, data) VALUES (?, ?, ?)',
            BigInt(message),
            `file${message}.png`,
            Buffer.from(text(64)),
          )
        }
      }
      db.run('INSERT INTO conversation_tags VALUES (?, ?)', id, c % 3 ? 'work' : 'personal')
    }
    const actions = [
      'login',
      'logout',
      'conversation.create',
      'conversation.delete',
      'settings.update',
      'export',
    ]
    for (let a = 1; a <= o.auditRows; a++) {
      db.run(
        'INSERT INTO audit_logs (ts, actor_id, action, target, ip, details) VALUES (?, ?, ?, ?, ?, ?)',
        iso(a * 5),
        BigInt(1 + (a % users)),
        actions[a % actions.length]!,
        conversationId(1 + (a % o.conversations)),
        `10.0.${a % 250}.${a % 200}`,
        JSON.stringify({ n: a }),
      )
    }
    db.exec('COMMIT')
  } finally {
    db.close()
  }
}
