/**
 * Extracts a downloaded artifact zip into a folder, without trusting it. The archive may have been
 * made by anyone who could upload an artifact, so every entry is checked before a single byte is
 * written: its path must name a file inside the folder (no `..`, no absolute or drive path, no
 * backslash, no symbolic link), names must be unique (also ignoring case, for case-insensitive
 * file systems), and each file is written with O_EXCL into a folder this code just made. The
 * unzip library of @actions/artifact is not used, so what it does with such entries (unzip-stream
 * 0.3.4 rewrites `..` to `.`) does not matter here.
 *
 * Reads the central directory (zip64 included), streams each entry through inflate, and checks
 * its size and CRC-32 as it goes: an entry that inflates past its declared size is cut off.
 */
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as path from 'node:path'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as zlib from 'node:zlib'
import { makeDirs } from '../util/fs.js'

/** The archive cannot be extracted safely; nothing outside the folder was written. */
export class UnsafeZipError extends Error {}

interface Entry {
  name: string
  rawName: Buffer
  directory: boolean
  method: number
  crc: number
  compressedSize: number
  size: number
  localOffset: number
  /** Where the entry's data begins, once its local header has been read. */
  dataStart: number
}

const EOCD = 0x06054b50
const ZIP64_LOCATOR = 0x07064b50
const ZIP64_EOCD = 0x06064b50
const CENTRAL = 0x02014b50
const LOCAL = 0x04034b50
const MAX_ENTRIES = 10_000
const MAX_CENTRAL_DIRECTORY = 16 * 1024 * 1024
const S_IFMT = 0o170000
const S_IFREG = 0o100000
const S_IFDIR = 0o040000

async function readAt(fh: fsp.FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length)
  const { bytesRead } = await fh.read(buf, 0, length, position)
  if (bytesRead !== length) throw new UnsafeZipError('the zip is truncated')
  return buf
}

/** Why `name` may not be extracted into a folder, or null when it names a path inside it. */
export function unsafeEntryName(name: string): string | null {
  if (name === '') return 'an empty name'
  if (name.includes('\0')) return 'a NUL byte in the name'
  if (name.includes('\\')) return 'a backslash in the name'
  if (name.startsWith('/')) return 'an absolute path'
  if (/^[A-Za-z]:/.test(name)) return 'a drive letter'
  const segments = name.replace(/\/$/, '').split('/')
  if (segments.some((s) => s === '..')) return 'a ".." segment (a path outside the folder)'
  if (segments.some((s) => s === '' || s === '.')) return 'an empty or "." segment'
  return null
}

async function centralDirectory(fh: fsp.FileHandle, size: number) {
  const tailLength = Math.min(size, 22 + 0xffff)
  const tail = await readAt(fh, size - tailLength, tailLength)
  let at = -1
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      at = i
      break
    }
  }
  if (at < 0) throw new UnsafeZipError('not a zip (no end of central directory record)')
  let count = tail.readUInt16LE(at + 10)
  let cdSize = tail.readUInt32LE(at + 12)
  let cdOffset = tail.readUInt32LE(at + 16)
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locatorAt = size - tailLength + at - 20
    if (locatorAt < 0) throw new UnsafeZipError('zip64 locator missing')
    const locator = await readAt(fh, locatorAt, 20)
    if (locator.readUInt32LE(0) !== ZIP64_LOCATOR) throw new UnsafeZipError('zip64 locator missing')
    const record = await readAt(fh, Number(locator.readBigUInt64LE(8)), 56)
    if (record.readUInt32LE(0) !== ZIP64_EOCD) throw new UnsafeZipError('zip64 record missing')
    count = Number(record.readBigUInt64LE(32))
    cdSize = Number(record.readBigUInt64LE(40))
    cdOffset = Number(record.readBigUInt64LE(48))
  }
  if (count > MAX_ENTRIES) throw new UnsafeZipError(`${count} entries (at most ${MAX_ENTRIES})`)
  if (cdSize > MAX_CENTRAL_DIRECTORY || cdOffset + cdSize > size)
    throw new UnsafeZipError('the central directory lies outside the file')
  return { count, cd: await readAt(fh, cdOffset, cdSize), cdOffset }
}

function parseEntries(cd: Buffer, count: number): Entry[] {
  const entries: Entry[] = []
  let p = 0
  for (let n = 0; n < count; n++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL)
      throw new UnsafeZipError('a damaged central directory')
    const madeBy = cd.readUInt16LE(p + 4) >> 8
    const flags = cd.readUInt16LE(p + 8)
    const method = cd.readUInt16LE(p + 10)
    const crc = cd.readUInt32LE(p + 16)
    let compressedSize = cd.readUInt32LE(p + 20)
    let size = cd.readUInt32LE(p + 24)
    const nameLength = cd.readUInt16LE(p + 28)
    const extraLength = cd.readUInt16LE(p + 30)
    const commentLength = cd.readUInt16LE(p + 32)
    const mode = cd.readUInt32LE(p + 38) >>> 16
    let localOffset = cd.readUInt32LE(p + 42)
    const rawName = cd.subarray(p + 46, p + 46 + nameLength)
    const extra = cd.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength)
    p += 46 + nameLength + extraLength + commentLength
    // Zip64: the sizes and offset that do not fit in 32 bits follow in this order.
    for (let e = 0; e + 4 <= extra.length;) {
      const id = extra.readUInt16LE(e)
      const length = extra.readUInt16LE(e + 2)
      if (id === 0x0001) {
        let q = e + 4
        const next = () => {
          if (q + 8 > e + 4 + length) throw new UnsafeZipError('a damaged zip64 field')
          const v = Number(extra.readBigUInt64LE(q))
          q += 8
          return v
        }
        if (size === 0xffffffff) size = next()
        if (compressedSize === 0xffffffff) compressedSize = next()
        if (localOffset === 0xffffffff) localOffset = next()
      }
      e += 4 + length
    }
    const name = rawName.toString('utf8')
    const why = unsafeEntryName(name)
    if (why) throw new UnsafeZipError(`entry ${JSON.stringify(name)} has ${why}`)
    // Unix hosts (3) keep the file type in the high bits: only files and folders are extracted.
    const type = madeBy === 3 ? mode & S_IFMT : 0
    if (type !== 0 && type !== S_IFREG && type !== S_IFDIR)
      throw new UnsafeZipError(
        `entry ${JSON.stringify(name)} is a ${type === 0o120000 ? 'symbolic link' : 'special file'}`,
      )
    if (flags & 0x1) throw new UnsafeZipError(`entry ${JSON.stringify(name)} is encrypted`)
    const directory = name.endsWith('/') || type === S_IFDIR
    if (!directory && method !== 0 && method !== 8)
      throw new UnsafeZipError(`entry ${JSON.stringify(name)} uses compression method ${method}`)
    entries.push({
      name: name.replace(/\/$/, ''),
      rawName,
      directory,
      method,
      crc,
      compressedSize,
      size,
      localOffset,
      dataStart: 0,
    })
  }
  return entries
}

/** Counts and checksums what passes through, and stops past the declared size. */
class Verify extends Transform {
  bytes = 0
  crc = 0
  constructor(
    private readonly limit: number,
    private readonly name: string,
  ) {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
    this.bytes += chunk.length
    if (this.bytes > this.limit) {
      done(new UnsafeZipError(`entry ${JSON.stringify(this.name)} inflates past its stated size`))
      return
    }
    this.crc = zlib.crc32(chunk, this.crc)
    done(null, chunk)
  }
}

/**
 * Extracts every entry of `zipFile` into `dest`, a folder that must not exist yet. Throws
 * UnsafeZipError, having written nothing, when any entry would land outside `dest`.
 */
export async function extractZip(zipFile: string, dest: string): Promise<string[]> {
  const fh = await fsp.open(zipFile, 'r')
  try {
    const { size } = await fh.stat()
    const { count, cd, cdOffset } = await centralDirectory(fh, size)
    const entries = parseEntries(cd, count)
    const root = path.resolve(dest)
    const seen = new Set<string>()
    for (const e of entries) {
      const target = path.resolve(root, e.name)
      // Belt and braces: the name checks above already rule this out.
      if (!target.startsWith(root + path.sep))
        throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} resolves outside the folder`)
      const key = e.name.toLowerCase()
      if (seen.has(key) && !e.directory)
        throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} appears twice`)
      seen.add(key)
      if (e.directory) continue
      const local = await readAt(fh, e.localOffset, 30)
      if (local.readUInt32LE(0) !== LOCAL)
        throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} has no local header`)
      const nameLength = local.readUInt16LE(26)
      const localName = await readAt(fh, e.localOffset + 30, nameLength)
      // A local header naming another path than the directory is how zips fool one reader or
      // another: streaming readers go by the local header.
      if (!localName.equals(e.rawName))
        throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} has another name in its header`)
      e.dataStart = e.localOffset + 30 + nameLength + local.readUInt16LE(28)
      if (e.dataStart + e.compressedSize > cdOffset)
        throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} overlaps the central directory`)
    }
    // Only now, with every entry checked, is anything written.
    await fsp.mkdir(root, { mode: 0o700 })
    const written: string[] = []
    for (const e of entries) {
      const target = path.resolve(root, e.name)
      if (e.directory) {
        await makeDirs(target, 0o700)
        continue
      }
      const start = e.dataStart
      await makeDirs(path.dirname(target), 0o700)
      const verify = new Verify(e.size, e.name)
      const streams: (NodeJS.ReadableStream | NodeJS.WritableStream)[] = [
        e.compressedSize === 0
          ? Readable.from([])
          : fs.createReadStream(zipFile, { start, end: start + e.compressedSize - 1 }),
      ]
      if (e.method === 8) streams.push(zlib.createInflateRaw())
      streams.push(verify, fs.createWriteStream(target, { flags: 'wx', mode: 0o600 }))
      await pipeline(streams)
      if (verify.bytes !== e.size || verify.crc >>> 0 !== e.crc >>> 0)
        throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} is damaged (size or CRC)`)
      written.push(target)
    }
    return written
  } finally {
    await fh.close()
  }
}
