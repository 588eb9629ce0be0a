import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { fromPublic, type KeyPair } from '@nats-io/nkeys'
import { base32Decode } from './base32.ts'

/** The first letter of a public nkey names its role. */
export const KeyRole = { operator: 'O', account: 'A', user: 'U', server: 'N' } as const
export type KeyRole = (typeof KeyRole)[keyof typeof KeyRole]

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


// 1 prefix byte, 32 key bytes, 2 checksum bytes
const rawPublicKey = (key: string) => base32Decode(key).subarray(1, 33)

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

const signingKeys = new WeakMap<KeyPair, KeyObject>()

/** The nkey pair's private key as an OpenSSL key (kept for the process: few keys ever sign here). */
export function privateKeyOf(kp: KeyPair): KeyObject {
  let ko = signingKeys.get(kp)
  if (ko === undefined) {
    // An encoded seed is 2 prefix bytes, the 32-byte Ed25519 seed, 2 checksum bytes.
    const seed = base32Decode(new TextDecoder().decode(kp.getSeed())).subarray(2, 34)
    const x = rawPublicKey(kp.getPublicKey()).toString('base64url')
    ko = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x }, format: 'jwk' })
    signingKeys.set(kp, ko)
  }
  return ko
}

/**
 * Signs with an nkey pair through OpenSSL: the pure-JS nacl behind `KeyPair.sign` takes milliseconds per
 * signature, blocking the event loop for all that time; OpenSSL takes tens of microseconds.
 */
export const signWithNkey = (kp: KeyPair, data: Uint8Array): Uint8Array => sign(null, data, privateKeyOf(kp))
