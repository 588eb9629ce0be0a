import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createAccount, fromSeed, type KeyPair } from '@nats-io/nkeys'
import { decodeJwt, isAccountKey, nowSeconds, signJwt, type TrustAnchor } from '../shared/index.ts'

/** What stops a bootstrap: the message names what is missing and where it was looked for. */
export class BootstrapError extends Error {
  override name = 'BootstrapError'
}

/** The system account as users of it are checked against: its identity and plain signing keys. */
export interface SysAccount {
  id: string
  jwt: string
  /** Plain signing keys: a user they sign keeps the permissions its own JWT states. */
  signingKeys: string[]
  /** Scoped signing keys: the scope's template replaces a user's permissions, so we never sign with them. */
  scopedKeys: string[]
}

export function sysAccountFrom(jwt: string): SysAccount {
  const { claims } = decodeJwt<{ signing_keys?: unknown }>(jwt.trim())
  if (claims.nats.type !== 'account' || !isAccountKey(claims.sub)) throw new BootstrapError('sys.jwt is not an account jwt')
  const listed = Array.isArray(claims.nats.signing_keys) ? (claims.nats.signing_keys as unknown[]) : []
  const signingKeys = listed.filter(isAccountKey)
  const scopedKeys = listed
    .map((k) => (typeof k === 'object' && k !== null ? (k as { key?: unknown }).key : undefined))
    .filter(isAccountKey)
  return { id: claims.sub, jwt: jwt.trim(), signingKeys, scopedKeys }
}

/** Every nkey seed in `*.nk` files under `dir` (recursively, so an nsc keystore works too), by public key. */
export async function readSeeds(dir: string): Promise<Map<string, KeyPair>> {
  const out = new Map<string, KeyPair>()
  let names: string[]
  try {
    names = (await readdir(dir, { recursive: true })).filter((n) => n.endsWith('.nk'))
  } catch {
    return out // no keys directory: no seeds
  }
  for (const name of names) {
    const text = await readFile(join(dir, name), 'utf8').catch(() => '')
    for (const line of text.split('\n').map((l) => l.trim())) {
      if (!/^S[AO][A-Z2-7]{56}$/.test(line)) continue
      try {
        const kp = fromSeed(new TextEncoder().encode(line))
        out.set(kp.getPublicKey(), kp)
      } catch {
        // a checksum that does not match is no seed: skip the line
      }
    }
  }
  return out
}

/**
 * Why servers would refuse a user of the system account, or undefined when they admit it. nats-server
 * admits a user signed by the account's identity key or one of its signing keys; an operator that
 * requires signing keys (`strict_signing_key_usage`) removes the identity key from that set.
 */
export function sysUserRefusal(userJwt: string, sys: SysAccount, trust: TrustAnchor): string | undefined {
  let claims
  try {
    claims = decodeJwt<{ issuer_account?: unknown }>(userJwt.trim()).claims
  } catch (e) {
    return `not a valid user jwt (${(e as Error).message})`
  }
  if (claims.nats.type !== 'user') return `not a user jwt (type ${String(claims.nats.type)})`
  const account = typeof claims.nats.issuer_account === 'string' ? claims.nats.issuer_account : claims.iss
  if (account !== sys.id) return `a user of ${account}, not of the system account ${sys.id}`
  if (claims.iss === sys.id) {
    return trust.strictSigningKeys ? 'signed by the SYS identity key, which an operator that requires signing keys refuses' : undefined
  }
  if (sys.signingKeys.includes(claims.iss) || sys.scopedKeys.includes(claims.iss)) return undefined
  return `signed by ${claims.iss}, which is not a signing key of the system account`
}

/** The key that signs the service users, and the re-signed system account when a signing key was added. */
export interface UserSigner {
  kp: KeyPair
  /** The system account's identity key: its users connect even before SYS resolves (protocol.md §8). */
  identity: boolean
  /** Set when a signing key was created: the new SYS JWT (listing it), to write to sys.jwt. */
  resignedSys?: string
  /** What was done, for the bootstrap's output. */
  note?: string
}

/**
 * Picks the key that signs service users. Without strict signing-key usage the SYS identity key does, so
 * its users connect before SYS resolves; otherwise (or without that seed) a plain SYS signing key. Under
 * strict usage with no such seed, a new signing key is added to SYS when we hold SYS's identity seed and
 * an operator signing key that may re-sign it; servers then need the re-signed sys.jwt preloaded, since a
 * bootstrapping SYS admits identity-signed users only. Throws a BootstrapError naming what is missing.
 */
export function chooseUserSigner(trust: TrustAnchor, sys: SysAccount, seeds: Map<string, KeyPair>, keysDir: string): UserSigner {
  const identity = seeds.get(sys.id)
  if (identity !== undefined && !trust.strictSigningKeys) return { kp: identity, identity: true }
  const signing = sys.signingKeys.map((k) => seeds.get(k)).find((kp) => kp !== undefined)
  if (signing !== undefined) return { kp: signing, identity: false }
  if (!trust.strictSigningKeys) {
    throw new BootstrapError(
      `no seed under ${keysDir} signs users of the system account ${sys.id}: put its identity seed there ` +
        `(keys/sys.nk) or the seed of one of its signing keys${listed(sys.signingKeys)}`,
    )
  }
  const operatorSigner = trust.signingKeys.map((k) => seeds.get(k)).find((kp) => kp !== undefined)
  if (identity === undefined || operatorSigner === undefined) {
    const missing = [
      ...(identity === undefined ? [`the system account's identity seed (${sys.id})`] : []),
      ...(operatorSigner === undefined ? [`an operator signing key seed${listed(trust.signingKeys)}`] : []),
    ]
    throw new BootstrapError(
      `the operator requires signing keys, so service users must be signed by a signing key of the system account ` +
        `${sys.id}, and ${keysDir} holds the seed of none${listed(sys.signingKeys)}. Put one there ` +
        `(nsc edit account SYS --sk generate, then copy its seed), or put ${missing.join(' and ')} there to let ` +
        `the bootstrap add one`,
    )
  }
  return addSigningKey(sys, identity, operatorSigner)
}

const listed = (keys: string[]) => (keys.length === 0 ? ' (it lists none)' : ` (it lists ${keys.join(', ')})`)

/** A new plain signing key on SYS, re-signed by the operator signing key with a strictly newer `iat`. */
function addSigningKey(sys: SysAccount, identity: KeyPair, operatorSigner: KeyPair): UserSigner {
  const { claims } = decodeJwt(sys.jwt)
  const kp = createAccount()
  const keys = Array.isArray(claims.nats.signing_keys) ? (claims.nats.signing_keys as unknown[]) : []
  const { iss: _iss, jti: _jti, ...rest } = claims
  const resignedSys = signJwt(
    {
      ...rest,
      sub: identity.getPublicKey(),
      iat: Math.max(nowSeconds(), claims.iat + 1),
      nats: { ...claims.nats, signing_keys: [...keys, kp.getPublicKey()] } as Record<string, unknown>,
    },
    operatorSigner,
  )
  const note = `added signing key ${kp.getPublicKey()} to the system account and re-signed sys.jwt with operator signing key ${operatorSigner.getPublicKey()}`
  return { kp, identity: false, resignedSys, note }
}
