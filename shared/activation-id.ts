import { createHash } from 'node:crypto'
import { base32 } from './base32.ts'

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
  return base32(createHash('sha256').update(`${iss}.${sub}.${cleanActivationSubject(subject)}`).digest(), { pad: true })
}

export const isActivationHashId = (s: unknown): s is string => typeof s === 'string' && /^[A-Z2-7]{52}====$/.test(s)
