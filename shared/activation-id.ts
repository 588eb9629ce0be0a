import { createHash } from 'node:crypto'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** RFC 4648 base32 with `=` padding: Go's base32.StdEncoding, which the hash id uses. */
function base32Padded(bytes: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31]
  return out + '='.repeat((8 - (out.length % 8)) % 8)
}

/**
 * The subject part of the hash id: the tokens before the first `*` or `>` token, `_` when that is the
 * first token, the subject itself when it has none (protocol.md §5).
 */
export function cleanActivationSubject(subject: string): string {
  const tokens = subject.split('.')
  const i = tokens.findIndex((t) => t === '*' || t === '>')
  if (i === -1) return subject
  return i === 0 ? '_' : tokens.slice(0, i).join('.')
}

/** The id an activation token is stored and fetched by: 56 characters ending in `====`. */
export function activationHashId(iss: string, sub: string, subject: string): string {
  return base32Padded(createHash('sha256').update(`${iss}.${sub}.${cleanActivationSubject(subject)}`).digest())
}

export const isActivationHashId = (s: unknown): s is string => typeof s === 'string' && /^[A-Z2-7]{52}====$/.test(s)
