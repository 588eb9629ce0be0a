import type { KeyPair } from '@nats-io/nkeys'
import { UNLIMITED } from '../../ops/identities.ts'

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

/**
 * Signs arbitrary claims as a v2 NATS JWT with nkeys, independently of the code under test, so fixtures can
 * carry any `iat`, `exp` or `nbf` (the jwt library always stamps `iat` with now).
 */
export function signClaims(claims: Record<string, unknown>, kp: KeyPair, header: Record<string, unknown> = { typ: 'JWT', alg: 'ed25519-nkey' }): string {
  const body = { jti: `fx-${Math.random().toString(36).slice(2)}`, iat: Math.floor(Date.now() / 1000), ...claims, iss: kp.getPublicKey() }
  const signed = `${b64(header)}.${b64(body)}`
  return `${signed}.${Buffer.from(kp.sign(Buffer.from(signed))).toString('base64url')}`
}

/** An account JWT for `account` signed by `signer`, unlimited unless `nats` says otherwise. */
export function accountJwt(
  signer: KeyPair,
  account: string,
  nats: Record<string, unknown> = {},
  claims: Record<string, unknown> = {},
): string {
  return signClaims(
    { sub: account, name: 'fixture', ...claims, nats: { limits: { ...UNLIMITED }, ...nats, type: 'account', version: 2 } },
    signer,
  )
}
