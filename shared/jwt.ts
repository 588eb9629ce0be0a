import { createHash } from 'node:crypto'
import type { KeyPair } from '@nats-io/nkeys'
import { base32 } from './base32.ts'
import { errors } from './errors.ts'
import { isPublicKey, KeyRole, signWithNkey, verifyNkeySignature, verifyNkeySignatureOffThread } from './nkey.ts'

/** nats-server refuses claims larger than this (protocol.md §4.1). */
export const MAX_JWT_BYTES = 1_048_576

export const JwtAlgorithm = { v1: 'ed25519', v2: 'ed25519-nkey' } as const

/** The standard claims every NATS JWT carries, with the NATS-specific part left open. */
export interface Claims<N = Record<string, unknown>> {
  jti?: string
  iat: number
  iss: string
  sub: string
  name?: string
  aud?: string
  exp?: number
  nbf?: number
  nats: N & { type?: string; version?: number }
}

export interface DecodedJwt<N = Record<string, unknown>> {
  token: string
  header: { typ: string; alg: string }
  claims: Claims<N>
}

const SEGMENT = /^[A-Za-z0-9_-]+$/

/**
 * How deep claims JSON may nest. NATS claims nest a handful of levels; a hostile token nested thousands deep
 * parses fine, then overflows the stack of whatever walks it recursively (JSON.stringify when the signer
 * re-signs it, the logger), so it is refused before parsing.
 */
const MAX_JSON_DEPTH = 64

/** True when arrays and objects in JSON text nest deeper than `max` (brackets inside strings don't count). */
function nestsDeeper(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

function segmentJson(seg: string, what: string): Record<string, unknown> {
  if (!SEGMENT.test(seg) || seg.length % 4 === 1) throw errors.jwtMalformed(`${what} is not base64url without padding`)
  const text = Buffer.from(seg, 'base64url').toString('utf8')
  if (nestsDeeper(text, MAX_JSON_DEPTH)) throw errors.jwtMalformed(`${what} nests deeper than ${MAX_JSON_DEPTH} levels`)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw errors.jwtMalformed(`${what} is not JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw errors.jwtMalformed(`${what} is not a JSON object`)
  }
  return value as Record<string, unknown>
}

const isTime = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)

/**
 * Decodes a NATS JWT and checks its shape and signature, not what it grants: size, three segments, header,
 * standard claim types, an issuer that is a public nkey, and an Ed25519 signature by that issuer.
 * The header `alg` picks what the signature covers (v1: the payload, v2: header and payload) unless
 * `claimVersion` is given: nats-io/jwt decides by the claims' own version instead, whatever the header says.
 * `unverified` checks everything but the signature, for a token whose every reader checks it anyway.
 */
export function decodeJwt<N = Record<string, unknown>>(token: string, opts: { claimVersion?: 1 | 2; unverified?: true } = {}): DecodedJwt<N> {
  const size = Buffer.byteLength(token)
  if (size > MAX_JWT_BYTES) throw errors.jwtTooLarge(size, MAX_JWT_BYTES)
  const parts = token.split('.')
  if (parts.length !== 3) throw errors.jwtMalformed(`expected 3 chunks, got ${parts.length}`)
  const [h, p, s] = parts as [string, string, string]
  const header = segmentJson(h, 'header')
  const typ = String(header.typ ?? '').toUpperCase()
  const alg = String(header.alg ?? '').toLowerCase()
  if (typ !== 'JWT') throw errors.jwtMalformed('header typ is not JWT')
  if (alg !== JwtAlgorithm.v1 && alg !== JwtAlgorithm.v2) throw errors.jwtMalformed(`unsupported algorithm ${alg}`)
  const claims = segmentJson(p, 'payload')
  if (typeof claims.iss !== 'string' || !/^[OA]/.test(claims.iss) || !isPublicKey(claims.iss, claims.iss[0] as KeyRole)) {
    throw errors.jwtMalformed('issuer is not an operator or account public key')
  }
  if (typeof claims.sub !== 'string' || claims.sub === '') throw errors.jwtMalformed('subject is missing')
  if (!isTime(claims.iat) || !isTime(claims.exp) || !isTime(claims.nbf)) {
    throw errors.jwtMalformed('iat, exp and nbf must be whole seconds')
  }
  if (typeof claims.nats !== 'object' || claims.nats === null || Array.isArray(claims.nats)) {
    throw errors.jwtMalformed('nats claims are missing')
  }
  if (!SEGMENT.test(s)) throw errors.jwtMalformed('signature is not base64url')
  const v2 = opts.claimVersion === undefined ? alg === JwtAlgorithm.v2 : opts.claimVersion === 2
  const signed = v2 ? `${h}.${p}` : p
  if (opts.unverified !== true && !takeVerified(claims.iss, signed, s) && !verifyNkeySignature(claims.iss, Buffer.from(signed, 'ascii'), Buffer.from(s, 'base64url'))) {
    throw errors.jwtBadSignature()
  }
  claims.iat ??= 0
  return { token, header: { typ, alg }, claims: claims as unknown as Claims<N> }
}

/**
 * Signatures found valid by verifyJwtAhead and not yet used by decodeJwt, by signature: the exact issuer
 * and signed bytes they cover. Bounded: an entry decodeJwt never asks for is dropped after others.
 */
const verifiedAhead = new Map<string, { iss: string; signed: string }>()
const MAX_VERIFIED_AHEAD = 1024

function takeVerified(iss: string, signed: string, sig: string): boolean {
  const v = verifiedAhead.get(sig)
  if (v === undefined || v.iss !== iss || v.signed !== signed) return false
  verifiedAhead.delete(sig)
  return true
}

/**
 * Checks the signature of `token` on libuv's thread pool, so a following decodeJwt of the same token does
 * not verify it on the event loop (an Ed25519 verification is about 0.1 ms here, far longer for a large
 * token). Never throws: whatever it cannot vouch for, decodeJwt checks and reports as before.
 */
export async function verifyJwtAhead(token: string): Promise<void> {
  const parts = token.split('.')
  if (parts.length !== 3 || Buffer.byteLength(token) > MAX_JWT_BYTES) return
  const [h, p, s] = parts as [string, string, string]
  const header = segmentObject(h)
  const iss = segmentObject(p)?.iss
  if (header === undefined) return // malformed: decodeJwt says how
  const alg = String(header.alg ?? '').toLowerCase()
  if (typeof iss !== 'string' || !/^[OA]/.test(iss) || !isPublicKey(iss, iss[0] as KeyRole) || !SEGMENT.test(s)) return
  const signed = alg === JwtAlgorithm.v2 ? `${h}.${p}` : p
  if (!(await verifyNkeySignatureOffThread(iss, Buffer.from(signed, 'ascii'), Buffer.from(s, 'base64url')))) return
  if (verifiedAhead.size >= MAX_VERIFIED_AHEAD) verifiedAhead.delete(verifiedAhead.keys().next().value!)
  verifiedAhead.set(s, { iss, signed })
}

/** The token a request carries as its whole body: refused at once when empty or larger than any JWT may be. */
export function tokenFrom(msg: { data: Uint8Array; string(): string }): string {
  if (msg.data.length === 0) throw errors.jwtMalformed('request body is empty')
  if (msg.data.length > MAX_JWT_BYTES) throw errors.jwtTooLarge(msg.data.length, MAX_JWT_BYTES)
  return msg.string()
}

/** The JSON object a token segment holds, or undefined when it holds none; never throws. */
function segmentObject(seg: string | undefined): Record<string, unknown> | undefined {
  let v: unknown
  try {
    v = JSON.parse(Buffer.from(seg ?? '', 'base64url').toString('utf8'))
  } catch {
    return undefined // not base64url JSON: nothing to read
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
}

/** Claims read without any check: every field may be missing or of another type than declared. */
export type PeekedClaims<N = Record<string, unknown>> = Partial<Omit<Claims, 'nats'>> & { nats?: Partial<N> & { type?: string } }

/**
 * The claims of any token, read without verifying anything, or undefined when it has no JSON payload. For
 * wording replies and finding which key to check against; never a basis for trust. The one tolerant peek.
 */
export function tryPeek<N = Record<string, unknown>>(token: string): PeekedClaims<N> | undefined {
  return segmentObject(token.split('.')[1]) as PeekedClaims<N> | undefined
}

/** Reads the claims of a token we produced or already validated, without checking anything; throws if unreadable. */
export function peekClaims<N = Record<string, unknown>>(token: string): Claims<N> {
  const claims = tryPeek<N>(token)
  if (claims === undefined) throw errors.jwtMalformed('the token has no JSON payload')
  return claims as Claims<N>
}

/** Time checks of protocol.md §4.8; `now` in seconds. */
export function checkValidity(claims: Pick<Claims, 'exp' | 'nbf'>, now = nowSeconds()): void {
  if (claims.exp && claims.exp > 0 && now > claims.exp) throw errors.jwtExpired()
  if (claims.nbf && claims.nbf > 0 && claims.nbf > now) throw errors.jwtNotYetValid()
}

export const isExpired = (claims: Pick<Claims, 'exp'>, now = nowSeconds()) =>
  claims.exp !== undefined && claims.exp > 0 && now > claims.exp

export const nowSeconds = () => Math.floor(Date.now() / 1000)

/**
 * The `jti` nats-server's Go library computes: base32 (no padding) of SHA-512/256 over the JSON of the
 * standard claims only, in Go's field order, with empty values left out (protocol.md §4.12).
 */
export function goJti(claims: Claims<unknown>): string {
  const ordered: Record<string, unknown> = {}
  for (const key of ['aud', 'exp', 'iat', 'iss', 'name', 'nbf', 'sub'] as const) {
    const v = claims[key]
    if (v !== undefined && v !== '' && v !== 0) ordered[key] = v
  }
  // Go's encoding/json escapes these three for HTML safety; the hash must see the same bytes.
  const json = JSON.stringify(ordered).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`)
  return base32(createHash('sha512-256').update(json).digest(), { pad: false })
}

/** Signs claims as a v2 NATS JWT with `kp`, setting `iss` and the Go-compatible `jti`. */
export function signJwt(claims: Omit<Claims<unknown>, 'iss' | 'jti'>, kp: KeyPair): string {
  const full = { ...claims, iss: kp.getPublicKey() } as Claims<unknown>
  const body = { jti: goJti(full), ...full }
  const header = Buffer.from(JSON.stringify({ typ: 'JWT', alg: JwtAlgorithm.v2 })).toString('base64url')
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url')
  const sig = Buffer.from(signWithNkey(kp, Buffer.from(`${header}.${payload}`, 'ascii'))).toString('base64url')
  return `${header}.${payload}.${sig}`
}
