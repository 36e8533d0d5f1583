/**
 * age interop against the reference TypeScript implementation (the npm package age-encryption,
 * typage, by age's author), on every machine: files the action writes open with it, and files it
 * writes open with the action, for keys and passphrases, around the 64 KiB chunk boundaries.
 * codec.test.ts checks the same against the age CLI wherever that is installed.
 */
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption'
import { describe, expect, it } from 'vitest'
import { decodeFile, encodeFile, generateAgeIdentity } from '../src/codec/index.js'
import { tempDir } from './helpers.js'

const CHUNK = 64 * 1024
const SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 200_000]

async function plainFile(dir: string, size: number) {
  const plain = randomBytes(size)
  await fs.writeFile(path.join(dir, 'db'), plain)
  return plain
}

describe('age interop with age-encryption (typage)', () => {
  it.each(SIZES)('a %i-byte file the action encrypts opens with typage', async (size) => {
    const dir = await tempDir()
    const { identity, recipient } = generateAgeIdentity()
    const plain = await plainFile(dir, size)
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.age'), {
      compression: 'none',
      encryption: { kind: 'age', recipients: [recipient] },
    })
    const d = new Decrypter()
    d.addIdentity(identity)
    const out = await d.decrypt(new Uint8Array(await fs.readFile(path.join(dir, 'db.age'))))
    expect(Buffer.from(out).equals(plain)).toBe(true)
  })

  it.each(SIZES)('a %i-byte file typage encrypts opens with the action', async (size) => {
    const dir = await tempDir()
    const identity = await generateX25519Identity()
    const plain = await plainFile(dir, size)
    const e = new Encrypter()
    e.addRecipient(await identityToRecipient(identity))
    await fs.writeFile(path.join(dir, 'db.age'), await e.encrypt(new Uint8Array(plain)))
    await decodeFile(path.join(dir, 'db.age'), path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'age', identities: [identity] },
    })
    expect((await fs.readFile(path.join(dir, 'out'))).equals(plain)).toBe(true)
  })

  it('keys agree: typage derives the same recipient from an identity the action generated', async () => {
    const { identity, recipient } = generateAgeIdentity()
    expect(await identityToRecipient(identity)).toBe(recipient)
  })

  it('passphrases (scrypt) both ways', async () => {
    const dir = await tempDir()
    const plain = await plainFile(dir, 150_000)
    const passphrase = 'correct horse battery staple'
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.age'), {
      compression: 'none',
      encryption: { kind: 'age', passphrase, scryptWorkFactor: 12 },
    })
    const d = new Decrypter()
    d.addPassphrase(passphrase)
    const opened = await d.decrypt(new Uint8Array(await fs.readFile(path.join(dir, 'db.age'))))
    expect(Buffer.from(opened).equals(plain)).toBe(true)

    const e = new Encrypter()
    e.setPassphrase(passphrase)
    e.setScryptWorkFactor(12)
    await fs.writeFile(path.join(dir, 'typage.age'), await e.encrypt(new Uint8Array(plain)))
    await decodeFile(path.join(dir, 'typage.age'), path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'age', passphrase },
    })
    expect((await fs.readFile(path.join(dir, 'out'))).equals(plain)).toBe(true)
  })

  it('several recipients: each identity opens the file alone; another does not', async () => {
    const dir = await tempDir()
    const a = generateAgeIdentity()
    const b = generateAgeIdentity()
    const plain = await plainFile(dir, 70_000)
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.age'), {
      compression: 'none',
      encryption: { kind: 'age', recipients: [`${a.recipient}\n${b.recipient}`] },
    })
    const stored = new Uint8Array(await fs.readFile(path.join(dir, 'db.age')))
    for (const who of [a, b]) {
      const d = new Decrypter()
      d.addIdentity(who.identity)
      expect(Buffer.from(await d.decrypt(stored)).equals(plain)).toBe(true)
    }
    // Positive control: typage does refuse a key the file was not encrypted to.
    const d = new Decrypter()
    d.addIdentity(generateAgeIdentity().identity)
    await expect(d.decrypt(stored)).rejects.toThrow()
  })
})
