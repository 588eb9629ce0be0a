import { statSync } from 'node:fs'
import { fromSeed, type KeyPair } from '@nats-io/nkeys'
import { deepFreeze, envReader, readLogLevel, readNatsConfig, readTrustAnchor } from '../../shared/index.ts'
import type { Env, EnvReader, LogLevel, NatsConfig, TrustAnchor } from '../../shared/index.ts'
import { readManagedPolicy, type ManagedPolicy } from './managed-policy.ts'

export interface SignerConfig {
  nats: NatsConfig
  logLevel: LogLevel
  trust: TrustAnchor
  /** The operator signing key for managed (self-signed) accounts; absent means they are refused. */
  signingKey: KeyPair | undefined
  /** Caps applied when re-signing managed accounts (SIGNER_MAX_*, SIGNER_ALLOW_*). */
  policy: ManagedPolicy
}

/**
 * SIGNER_SEED_FILE must hold an operator seed whose public key is one of the operator's signing keys, in a
 * file nobody but its owner can read: a seed others can read is as good as published.
 */
function readSigningKey(r: EnvReader, trust: TrustAnchor | undefined): KeyPair | undefined {
  const file = r.optionalFile('SIGNER_SEED_FILE')
  if (file === undefined) return undefined
  if ((statSync(file.path).mode & 0o077) !== 0) {
    r.problem('SIGNER_SEED_FILE', `${file.path} can be read by others; chmod 600 it`)
    return undefined
  }
  const seed = file.text.split('\n').map((l) => l.trim()).find((l) => /^SO[A-Z2-7]{56}$/.test(l))
  let kp: KeyPair
  try {
    if (seed === undefined) throw new Error('no operator seed')
    kp = fromSeed(new TextEncoder().encode(seed))
  } catch {
    r.problem('SIGNER_SEED_FILE', `${file.path} holds no operator seed`)
    return undefined
  }
  if (trust !== undefined && !trust.signingKeys.includes(kp.getPublicKey())) {
    r.problem('SIGNER_SEED_FILE', `key ${kp.getPublicKey()} is not one of the operator's signing keys`)
    return undefined
  }
  return kp
}

export function loadSignerConfig(env: Env): SignerConfig {
  const r = envReader(env)
  const nats = readNatsConfig(r)
  const logLevel = readLogLevel(r)
  const trust = readTrustAnchor(r, true)
  const signingKey = readSigningKey(r, trust)
  const policy = readManagedPolicy(r)
  r.assertValid()
  // KeyPair holds the seed: keep it out of deepFreeze's walk and of anything that serialises the config.
  return { ...deepFreeze({ nats, logLevel, trust: trust as TrustAnchor, policy }), signingKey }
}
