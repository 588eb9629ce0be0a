import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { fromPublic, type KeyPair } from '@nats-io/nkeys'

/** The first letter of a public nkey names its role. */
export const KeyRole = { operator: 'O', account: 'A', user: 'U', server: 'N' } as const
export type KeyRole = (typeof KeyRole)[keyof typeof KeyRole]

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** True when `key` is a well-formed public nkey (checksum included) of the given role. */
export function isPublicKey(key: unknown, role: KeyRole): key is string {
  if (typeof key !== 'string' || key.length !== 56 || key[0] !== role) return false
  try {
    fromPublic(key)
    return true
  } catch {
    return false // any decoding failure simply means "not a key"
  }
}

export const isAccountKey = (key: unknown): key is string => isPublicKey(key, KeyRole.account)
export const isOperatorKey = (key: unknown): key is string => isPublicKey(key, KeyRole.operator)

/**
 * A nats-server's id (`server.id` of its `$SYS` replies) is its public server nkey; our resolver's claim
 * replies carry a micro service id there and never match. Shape only: checked on every reply gathered.
 */
export const isServerId = (id: unknown): id is string => typeof id === 'string' && /^N[A-Z2-7]{55}$/.test(id)

function base32Bytes(text: string): number[] {
  const out: number[] = []
  let bits = 0
  let acc = 0
  for (const ch of text) {
    acc = ((acc << 5) | BASE32.indexOf(ch)) & 0xffff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out.push((acc >> bits) & 0xff)
    }
  }
  return out
}

// 1 prefix byte, 32 key bytes, 2 checksum bytes
const rawPublicKey = (key: string) => Buffer.from(base32Bytes(key).slice(1, 33))

// Verification keys are few (the operator and its signing keys, account keys), and KeyObject creation is
// the costly part of a verify, so keep them. Bounded so hostile input cannot grow it without limit.
const keyObjects = new Map<string, KeyObject>()
const MAX_CACHED_KEYS = 10_000

function keyObject(key: string): KeyObject {
  let ko = keyObjects.get(key)
  if (ko === undefined) {
    ko = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: rawPublicKey(key).toString('base64url') }, format: 'jwk' })
    if (keyObjects.size >= MAX_CACHED_KEYS) keyObjects.clear()
    keyObjects.set(key, ko)
  }
  return ko
}

/**
 * Verifies an Ed25519 signature made by the nkey `key` (already known to be a valid public nkey).
 * Uses OpenSSL rather than the pure-JS nacl of @nats-io/nkeys: it is many times faster on the push path.
 */
export function verifyNkeySignature(key: string, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false
  return verify(null, data, keyObject(key), signature)
}

/** The same check on libuv's thread pool: the event loop keeps serving other requests meanwhile. */
export function verifyNkeySignatureOffThread(key: string, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (signature.length !== 64) return Promise.resolve(false)
  return new Promise((resolve, reject) => verify(null, data, keyObject(key), signature, (err, ok) => (err ? reject(err) : resolve(ok))))
}

// Few signing keys ever sign here (the operator signing key in managed mode), so keep them for the process.
const signingKeys = new WeakMap<KeyPair, KeyObject>()

/**
 * Signs with an nkey pair through OpenSSL: the pure-JS nacl behind `KeyPair.sign` takes milliseconds per
 * signature, blocking the event loop for all that time; OpenSSL takes tens of microseconds.
 */
export function signWithNkey(kp: KeyPair, data: Uint8Array): Uint8Array {
  let ko = signingKeys.get(kp)
  if (ko === undefined) {
    // An encoded seed is 2 prefix bytes, the 32-byte Ed25519 seed, 2 checksum bytes.
    const seed = Buffer.from(base32Bytes(new TextDecoder().decode(kp.getSeed())).slice(2, 34))
    const x = rawPublicKey(kp.getPublicKey()).toString('base64url')
    ko = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x }, format: 'jwk' })
    signingKeys.set(kp, ko)
  }
  return sign(null, data, ko)
}
