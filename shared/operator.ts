import { decodeJwt } from './jwt.ts'
import { AppError } from './errors.ts'
import type { EnvReader } from './env.ts'
import { isAccountKey, isOperatorKey } from './nkey.ts'

/** What the operator JWT tells us to trust: the anchor of every validation. */
export interface TrustAnchor {
  operatorJwt: string
  operatorKey: string
  signingKeys: string[]
  /** With strict signing-key usage the operator identity key may not sign accounts. */
  strictSigningKeys: boolean
  systemAccount: string | undefined
}

interface OperatorNats {
  type?: string
  signing_keys?: unknown
  strict_signing_key_usage?: unknown
  system_account?: unknown
}

/** protocol.md §4.6: the operator's signing keys, and its identity key unless strict signing-key usage is on. */
export function isTrustedIssuer(iss: string, trust: TrustAnchor): boolean {
  return trust.signingKeys.includes(iss) || (!trust.strictSigningKeys && iss === trust.operatorKey)
}

/**
 * Decodes and checks an operator JWT; throws an AppError naming what is wrong.
 *
 * The rule is nats-server's (`readOperatorJWT`, which calls nats-io/jwt's `DecodeOperatorClaims`): a valid
 * signature by an operator key, and nothing more about who signed. The JWT is trusted because the operator
 * configured it, not because of its signer: nsc signs every edit of a strict-mode operator (one that
 * requires signing keys) with one of the operator's signing keys, and nats-server loads that JWT.
 */
export function trustAnchorFrom(token: string): TrustAnchor {
  const { claims } = decodeJwt<OperatorNats>(token.trim())
  const n = claims.nats
  if (n.type !== 'operator') throw new AppError('JWT_WRONG_TYPE', 400, `not an operator jwt: type ${String(n.type)}`)
  if (!isOperatorKey(claims.sub)) throw new AppError('JWT_MALFORMED', 400, 'operator jwt subject is not an operator key')
  if (!isOperatorKey(claims.iss)) throw new AppError('JWT_MALFORMED', 400, 'operator jwt must be signed by an operator key')
  const signingKeys = Array.isArray(n.signing_keys) ? n.signing_keys : []
  if (!signingKeys.every(isOperatorKey)) throw new AppError('JWT_MALFORMED', 400, 'operator signing_keys must be operator keys')
  const systemAccount = isAccountKey(n.system_account) ? n.system_account : undefined
  return {
    operatorJwt: token.trim(),
    operatorKey: claims.sub,
    signingKeys,
    strictSigningKeys: n.strict_signing_key_usage === true,
    systemAccount,
  }
}

/** OPERATOR_JWT: path to the operator JWT. */
export function readTrustAnchor(r: EnvReader, required: boolean): TrustAnchor | undefined {
  const file = required ? r.file('OPERATOR_JWT') : r.optionalFile('OPERATOR_JWT')
  if (file === undefined) return undefined
  try {
    return trustAnchorFrom(file.text)
  } catch (e) {
    r.problem('OPERATOR_JWT', `${file.path} is not a valid operator jwt (${(e as Error).message})`)
    return undefined
  }
}
