import {
  decodeJwt,
  errors,
  isOperatorKey,
  nowSeconds,
  subjects,
  tokenFrom,
  verifyJwtAhead,
  type MeshService,
} from '../../shared/index.ts'
import { checkAccountContent, decodeAccountJwt } from './account-rules.ts'
import type { SignerConfig } from './config.ts'
import { signManagedAccount } from './managed-policy.ts'

/**
 * When the operator drops a signing key, accounts signed by it are no longer trusted by any server (nsc#394).
 * Re-signing one with the current key is a managed signature like any other: the claims go through the same
 * policy as a self-signed push, so a system-account user gains nothing here that a self-signed push would not
 * give, even with a JWT signed by a key that was dropped because it leaked. The caller picks which accounts
 * to re-sign, against the operator JWT about to be deployed: the key may still be trusted here.
 */
export function resignAccount(token: string, config: SignerConfig, now = nowSeconds()): string {
  if (config.signingKey === undefined) throw errors.selfSignedRefused()
  // decoded and checked as a push is (but for trust, see above): the claims go into what we sign
  const { claims, nats } = decodeAccountJwt(token)
  if (!isOperatorKey(claims.iss)) throw errors.requestInvalid('only an account signed by an operator key can be re-signed')
  checkAccountContent(claims.sub, nats)
  // The stored iat is the JWT's own: the new version must be newer for every server to take it.
  return signManagedAccount({ ...claims, iss: claims.sub }, config.signingKey, config.policy, claims.iat, now)
}

/** `mesh.signer.resign` (body: the stored account JWT) and `mesh.signer.operator` (the trusted operator JWT). */
export function addResignEndpoints(service: MeshService, config: SignerConfig): void {
  service.endpoint({
    name: 'resign',
    subject: subjects.signerResign,
    description: 'Re-signs an operator-signed account JWT with the current signing key, under the managed policy',
    async handle(msg, log) {
      const token = tokenFrom(msg)
      await verifyJwtAhead(token)
      const jwt = resignAccount(token, config)
      log.info({ account: decodeJwt(jwt).claims.sub }, 'account re-signed')
      return JSON.stringify({ jwt })
    },
  })
  service.endpoint({
    name: 'operator',
    subject: subjects.signerOperator,
    description: 'The operator JWT the signer trusts (public), for linting stored accounts against it',
    handle: () => config.trust.operatorJwt,
  })
}
