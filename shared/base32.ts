const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/**
 * RFC 4648 base32. Go's NATS code uses both forms: without padding for a JWT's `jti`, and with `=` padding
 * (StdEncoding) for an activation token's hash id.
 */
export function base32(bytes: Uint8Array, opts: { pad: boolean }): string {
  let out = ''
  let bits = 0
  let acc = 0
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(acc >> bits) & 31]
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31]
  return opts.pad ? out + '='.repeat((8 - (out.length % 8)) % 8) : out
}

/** The bytes of unpadded RFC 4648 base32 text (an nkey's). */
export function base32Decode(text: string): Buffer {
  const out: number[] = []
  let bits = 0
  let acc = 0
  for (const ch of text) {
    acc = ((acc << 5) | ALPHABET.indexOf(ch)) & 0xffff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out.push((acc >> bits) & 0xff)
    }
  }
  return Buffer.from(out)
}
