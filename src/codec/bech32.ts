/**
 * Bech32 (BIP173) as age uses it for keys: no length limit on the data part, all-lowercase or
 * all-uppercase, the checksum always computed over the lowercase form.
 */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]

function polymod(values: readonly number[]): number {
  let chk = 1
  for (const v of values) {
    const top = chk >>> 25
    chk = ((chk & 0x1ffffff) << 5) ^ v
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i]!
  }
  return chk >>> 0
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = []
  for (const c of hrp) out.push(c.charCodeAt(0) >> 5)
  out.push(0)
  for (const c of hrp) out.push(c.charCodeAt(0) & 31)
  return out
}

/** Regroups bits; `pad` is false when decoding, where leftover bits must be zero padding. */
function convertBits(
  data: ArrayLike<number>,
  from: number,
  to: number,
  pad: boolean,
): number[] | null {
  let acc = 0
  let bits = 0
  const out: number[] = []
  const max = (1 << to) - 1
  for (let i = 0; i < data.length; i++) {
    acc = (acc << from) | data[i]!
    bits += from
    while (bits >= to) {
      bits -= to
      out.push((acc >> bits) & max)
    }
    acc &= (1 << bits) - 1
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & max)
  } else if (bits >= from || acc !== 0) {
    return null
  }
  return out
}

/** Encodes `data` under `hrp`; returns lowercase unless `upper`. */
export function bech32Encode(hrp: string, data: Uint8Array, upper = false): string {
  const lower = hrp.toLowerCase()
  const words = convertBits(data, 8, 5, true)!
  const mod = polymod([...hrpExpand(lower), ...words, 0, 0, 0, 0, 0, 0]) ^ 1
  let out = `${lower}1`
  for (const w of words) out += CHARSET[w]
  for (let i = 0; i < 6; i++) out += CHARSET[(mod >>> (5 * (5 - i))) & 31]
  return upper ? out.toUpperCase() : out
}

/** Decodes a Bech32 string; returns null for anything malformed (mixed case, bad checksum). */
export function bech32Decode(text: string): { hrp: string; data: Buffer } | null {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) return null
  const s = text.toLowerCase()
  const sep = s.lastIndexOf('1')
  if (sep < 1 || sep + 7 > s.length) return null
  const hrp = s.slice(0, sep)
  for (const c of hrp) {
    const code = c.charCodeAt(0)
    if (code < 33 || code > 126) return null
  }
  const words: number[] = []
  for (const c of s.slice(sep + 1)) {
    const w = CHARSET.indexOf(c)
    if (w < 0) return null
    words.push(w)
  }
  if (polymod([...hrpExpand(hrp), ...words]) !== 1) return null
  const bytes = convertBits(words.slice(0, -6), 5, 8, false)
  if (!bytes) return null
  return { hrp, data: Buffer.from(bytes) }
}
