import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { encode, type KeyPair } from '@nats-io/nkeys'
import type { Authenticator } from '@nats-io/nats-core'
import { base32 } from '../shared/base32.ts'
import { privateKeyOf } from '../shared/nkey.ts'
import { UNLIMITED } from '../ops/identities.ts'
import { makeFixture, type Fixture } from '../test/kit/fixtures.ts'
import type { Scope } from './scope.ts'

/**
 * The test kit's fixture (an operator, its system account and user, the storage account MESH, written where
 * servers and services read them) and the operator signing key as a node:crypto key, which signs account
 * JWTs far faster than nacl.
 */
export type BenchFixture = Fixture & { signer: FastSigner }

export async function makeBenchFixture(scope: Scope): Promise<BenchFixture> {
  const fx = await makeFixture(scope)
  return { ...fx, signer: FastSigner.fromKeyPair(fx.op.signingKp) }
}

/** CRC-16/XMODEM, the nkey checksum. */
function crc16(bytes: Uint8Array): number {
  let crc = 0
  for (const b of bytes) {
    crc ^= b << 8
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/** nkey prefix bytes of the public keys we make: 'A' and 'U'. */
const PREFIX = { account: 0, user: 20 << 3 } as const

function encodePublicKey(prefix: number, key32: Uint8Array): string {
  const raw = Buffer.alloc(35)
  raw[0] = prefix
  Buffer.from(key32).copy(raw, 1)
  raw.writeUInt16LE(crc16(raw.subarray(0, 33)), 33)
  return base32(raw, { pad: false })
}

/**
 * A valid account public key with no private key behind it: enough for accounts that are only stored,
 * looked up and pushed (nobody connects to them), and thousands of times cheaper than a nacl key pair.
 */
export const randomAccountId = (): string => encodePublicKey(PREFIX.account, randomBytes(32))

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const HEADER = b64({ typ: 'JWT', alg: 'ed25519-nkey' })

/**
 * An nkey that signs through OpenSSL (node:crypto). The pure-JS nacl of @nats-io/nkeys takes milliseconds
 * per signature (and per key pair) on this machine: far too slow for thousands of fixtures, and a client
 * cost that would blur what the benchmark compares.
 */
export class FastSigner {
  constructor(
    readonly publicKey: string,
    private readonly key: KeyObject,
  ) {}

  static fromKeyPair(kp: KeyPair): FastSigner {
    return new FastSigner(kp.getPublicKey(), privateKeyOf(kp))
  }

  /** A new key of the given role. */
  static generate(role: keyof typeof PREFIX): FastSigner {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    const x = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')
    return new FastSigner(encodePublicKey(PREFIX[role], x), privateKey)
  }

  signBytes(data: Uint8Array): Uint8Array {
    return sign(null, data, this.key)
  }

  sign(claims: Record<string, unknown>): string {
    const body = { jti: randomBytes(16).toString('hex'), iat: Math.floor(Date.now() / 1000), ...claims, iss: this.publicKey }
    const signed = `${HEADER}.${b64(body)}`
    return `${signed}.${sign(null, Buffer.from(signed), this.key).toString('base64url')}`
  }

  /** An account JWT (unlimited unless `nats` says otherwise), as nsc would produce for `id`. */
  account(id: string, opts: { name?: string; iat?: number; nats?: Record<string, unknown> } = {}): string {
    return this.sign({
      ...(opts.iat !== undefined ? { iat: opts.iat } : {}),
      sub: id,
      name: opts.name ?? 'bench',
      nats: { limits: { ...UNLIMITED }, ...opts.nats, type: 'account', version: 2 },
    })
  }
}

/** Stored-only accounts: random ids, each with a JWT signed by the operator signing key. */
export interface StoredAccounts {
  ids: string[]
  jwts: string[]
}

export function makeAccounts(fx: BenchFixture, count: number, prefix = 'bench'): StoredAccounts {
  const ids: string[] = []
  const jwts: string[] = []
  for (let i = 0; i < count; i++) {
    const id = randomAccountId()
    ids.push(id)
    jwts.push(fx.signer.account(id, { name: `${prefix}-${i}` }))
  }
  return { ids, jwts }
}

/** An account whose key we hold, so users can be issued for it, with its operator-signed JWT. */
export interface ConnectableAccount {
  id: string
  key: FastSigner
  jwt: string
}

export function makeConnectableAccount(fx: BenchFixture, name: string): ConnectableAccount {
  const key = FastSigner.generate('account')
  return { id: key.publicKey, key, jwt: fx.signer.account(key.publicKey, { name }) }
}

/** A user of `account`, shaped as @nats-io/jwt's encodeUser makes it (no limits: -1). */
export interface BenchUser {
  id: string
  jwt: string
  key: FastSigner
}

export function makeUser(account: { key: FastSigner }, name = 'u'): BenchUser {
  const key = FastSigner.generate('user')
  const jwt = account.key.sign({
    sub: key.publicKey,
    name,
    nats: { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: 'user', version: 2 },
  })
  return { id: key.publicKey, jwt, key }
}

/** Answers the server's nonce as credsAuthenticator would, signing through OpenSSL. */
export function userAuthenticator(user: BenchUser): Authenticator {
  return (nonce?: string) => ({
    jwt: user.jwt,
    nkey: user.id,
    sig: nonce ? encode(user.key.signBytes(new TextEncoder().encode(nonce))) : '',
  })
}
