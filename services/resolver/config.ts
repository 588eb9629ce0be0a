import { decodeJwt, deepFreeze, envReader, readLogLevel, readNatsConfig, isTrustedIssuer, readTrustAnchor } from '../../shared/index.ts'
import type { Env, EnvReader, LogLevel, NatsConfig, TrustAnchor } from '../../shared/index.ts'

export interface ResolverConfig {
  nats: NatsConfig
  logLevel: LogLevel
  dataDir: string
  /** Stored at start, so a fresh store can serve the system account. */
  systemAccountJwt: string | undefined
  trust: TrustAnchor | undefined
  cacheSize: number
  /** RESOLVER_ALLOW_DELETE: false refuses every `$SYS.REQ.CLAIMS.DELETE` (nsc's generated full config). */
  allowDelete: boolean
  /** Between periodic reconciliation passes (servers against the store); 0 = no periodic pass. */
  reconcileSeconds: number
  /**
   * RESOLVER_AUTHORITATIVE: false while full-resolver servers still hold accounts the mesh may lack (a
   * migration): LOOKUP then stays silent for unknown accounts instead of answering "not found".
   */
  authoritative: boolean
  /** `level` (one instance) or `jetstream` (several, sharing streams in the storage account). */
  store: 'level' | 'jetstream'
  /** The storage-account connection of the jetstream engine; undefined in level mode. */
  js: JetStreamConfig | undefined
}

export interface JetStreamConfig {
  servers: string[]
  /** Contents of a storage-account (MESH) user's creds file; never logged. */
  creds: string
  /** Unset: 3, or 1 when the servers are not clustered. */
  replicas: number | undefined
}

/** RESOLVER_JS_*: required creds in jetstream mode, the servers default to NATS_URL's. */
function readJetStreamConfig(r: EnvReader, nats: NatsConfig): JetStreamConfig | undefined {
  const creds = r.optionalFile('RESOLVER_JS_CREDS')
  const url = r.optionalString('RESOLVER_JS_URL')
  const replicas = r.optionalString('RESOLVER_JS_REPLICAS') === undefined ? undefined : r.integer('RESOLVER_JS_REPLICAS', 3, 1, 5)
  if (creds === undefined) {
    r.problem('RESOLVER_JS_CREDS', 'is required when RESOLVER_STORE=jetstream (creds of a user of the storage account)')
    return undefined
  }
  if (!/-----BEGIN NATS USER JWT-----[\s\S]+-----BEGIN USER NKEY SEED-----/.test(creds.text)) {
    r.problem('RESOLVER_JS_CREDS', `${creds.path} is not a NATS creds file (user JWT and seed)`)
  }
  const servers = url === undefined ? nats.servers : url.split(',').map((s) => s.trim()).filter((s) => s !== '')
  return { servers, creds: creds.text, replicas }
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
    allowDelete: r.oneOf('RESOLVER_ALLOW_DELETE', ['true', 'false'], 'true') === 'true',
    reconcileSeconds: r.integer('RESOLVER_RECONCILE_SECONDS', 300, 0, 86_400),
    authoritative: r.oneOf('RESOLVER_AUTHORITATIVE', ['true', 'false'], 'true') === 'true',
    store: r.oneOf('RESOLVER_STORE', ['level', 'jetstream'] as const, 'level'),
    js: undefined,
  }
  if (config.store === 'jetstream') config.js = readJetStreamConfig(r, config.nats)
  config.systemAccountJwt = readSystemAccountJwt(r, config.trust)
  r.assertValid()
  return deepFreeze(config)
}
