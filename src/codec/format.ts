/** What a file holds, from its first bytes: enough to refuse the wrong key kind early. */

export type Format =
  'age' | 'age-armor' | 'gpg' | 'gpg-armor' | 'zstd' | 'gzip' | 'empty' | 'unknown'

/** How many leading bytes `detectFormat` looks at. */
export const HEAD_BYTES = 64

const startsWith = (head: Uint8Array, text: string) =>
  head.length >= text.length &&
  Buffer.from(head.subarray(0, text.length)).toString('latin1') === text

/**
 * `unknown` is anything else: a SQLite file, a pg_dump archive or plain SQL. OpenPGP is
 * recognised by the packet that opens an encrypted message (a public-key or a symmetric-key
 * encrypted session key), in either packet header format.
 */
export function detectFormat(head: Uint8Array): Format {
  if (head.length === 0) return 'empty'
  if (startsWith(head, 'age-encryption.org/')) return 'age'
  const text = Buffer.from(head).toString('latin1').trimStart()
  if (text.startsWith('-----BEGIN AGE ENCRYPTED FILE-----')) return 'age-armor'
  if (text.startsWith('-----BEGIN PGP MESSAGE-----')) return 'gpg-armor'
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd'
  const first = head[0]!
  if (first & 0x80) {
    const tag = first & 0x40 ? first & 0x3f : (first >> 2) & 0x0f
    if (tag === 1 || tag === 3) return 'gpg'
  }
  return 'unknown'
}

export function describeFormat(format: Format): string {
  switch (format) {
    case 'age':
      return 'an age file'
    case 'age-armor':
      return 'an ASCII-armored age file'
    case 'gpg':
      return 'an OpenPGP (gpg) message'
    case 'gpg-armor':
      return 'an ASCII-armored OpenPGP (gpg) message'
    case 'zstd':
      return 'zstd-compressed data'
    case 'gzip':
      return 'gzip-compressed data'
    case 'empty':
      return 'empty (0 bytes)'
    case 'unknown':
      return 'neither encrypted nor compressed data'
  }
}
