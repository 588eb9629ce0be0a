import {
  decodeJwt,
  deepFreeze,
  envReader,
  readLogLevel,
  readNatsConfig,
  isTrustedIssuer,
  readTrustAnchor,
  type Env,
  type EnvReader,
  type LogLevel,
  type NatsConfig,
  type TrustAnchor,
} from '../../shared/index.ts'

export interface ResolverConfig {
  nats: NatsConfig
  logLevel: LogLevel
  dataDir: string
  /** Stored at start, so a fresh store can serve the system account. */
  systemAccountJwt: string | undefined
  trust: TrustAnchor | undefined
  cacheSize: number
  /** How often to compare store hashes with the other resolver instances. */
  syncIntervalSeconds: number
  /** How long a change a peer accepted may stay undelivered before this instance delivers it. */
  takeoverSeconds: number
  /** RESOLVER_ALLOW_DELETE: false refuses every `$SYS.REQ.CLAIMS.DELETE` (nsc's generated full config). */
  allowDelete: boolean
  /** Between periodic reconciliation passes (servers against the store); 0 = no periodic pass. */
  reconcileSeconds: number
  /**
   * RESOLVER_AUTHORITATIVE: false while full-resolver servers still hold accounts the mesh may lack (a
   * migration): LOOKUP then stays silent for unknown accounts instead of answering "not found".
   */
  authoritative: boolean
}

/**
 * SYSTEM_ACCOUNT_JWT must be a validly signed account JWT and, when the operator is known, its system account
 * signed by a key the operator trusts (under strict signing-key usage, a signing key): servers would refuse
 * any other, so serving it would lock every service user out.
 */
function readSystemAccountJwt(r: EnvReader, trust: TrustAnchor | undefined): string | undefined {
  const file = r.optionalFile('SYSTEM_ACCOUNT_JWT')
  if (file === undefined) return undefined
  try {
    const { claims } = decodeJwt(file.text.trim())
    if (claims.nats.type !== 'account') throw new Error(`type is ${String(claims.nats.type)}`)
    if (trust?.systemAccount !== undefined && claims.sub !== trust.systemAccount) {
      throw new Error(`it is ${claims.sub}, the operator's system account is ${trust.systemAccount}`)
    }
    if (trust !== undefined && !isTrustedIssuer(claims.iss, trust)) {
      const why = trust.strictSigningKeys && claims.iss === trust.operatorKey ? ' (the operator requires signing keys)' : ''
      throw new Error(`its issuer ${claims.iss} is not one the operator trusts${why}`)
    }
    return file.text.trim()
  } catch (e) {
    r.problem('SYSTEM_ACCOUNT_JWT', `${file.path} is not the system account jwt (${(e as Error).message})`)
    return undefined
  }
}

export function loadResolverConfig(env: Env): ResolverConfig {
  const r = envReader(env)
  const config: ResolverConfig = {
    nats: readNatsConfig(r),
    logLevel: readLogLevel(r),
    dataDir: r.path('RESOLVER_DATA_DIR', './.data/resolver'),
    systemAccountJwt: undefined,
    trust: readTrustAnchor(r, false),
    cacheSize: r.integer('RESOLVER_CACHE_SIZE', 100_000, 0, 100_000_000),
    syncIntervalSeconds: r.integer('RESOLVER_SYNC_SECONDS', 30, 1, 86_400),
    takeoverSeconds: r.integer('RESOLVER_TAKEOVER_SECONDS', 15, 1, 86_400),
    allowDelete: r.oneOf('RESOLVER_ALLOW_DELETE', ['true', 'false'], 'true') === 'true',
    reconcileSeconds: r.integer('RESOLVER_RECONCILE_SECONDS', 300, 0, 86_400),
    authoritative: r.oneOf('RESOLVER_AUTHORITATIVE', ['true', 'false'], 'true') === 'true',
  }
  config.systemAccountJwt = readSystemAccountJwt(r, config.trust)
  r.assertValid()
  return deepFreeze(config)
}
