import { decodeGo, parseJsonNodes, type DecodeContext, type GoType, type JsonNode } from './go-json.ts'

/**
 * The claims structs of nats-io/jwt v2.8 (v2/claims.go, account_claims.go, imports.go, exports.go, types.go,
 * signingkeys.go, activation_claims.go, decoder*.go), as field name → Go type, embedded structs flattened.
 */

const str = 'string' as const
const i64 = 'int64' as const
const bool = 'bool' as const
const strings: GoType = { slice: str }
const struct = (fields: Record<string, GoType>): GoType => ({ struct: fields })

/** ExportType's UnmarshalJSON: only these two strings; anything else, null included, fails the decode. */
const exportType: GoType = {
  custom(n, ctx, path) {
    if (n.k === 'str' && (n.v === 'stream' || n.v === 'service')) return n.v
    ctx.errors.push(`${path}: unknown export type ${n.k === 'str' ? JSON.stringify(n.v.slice(0, 40)) : n.k}`)
    return undefined
  },
}

const claimsData = { aud: str, exp: i64, jti: str, iat: i64, iss: str, name: str, nbf: i64, sub: str }
const genericFields = { tags: strings, type: str, version: 'int64' as GoType }
const info = { description: str, info_url: str }

const importType = struct({
  name: str, subject: str, account: str, token: str, to: str, local_subject: str,
  type: exportType, share: bool, allow_trace: bool,
})
const revocations: GoType = { map: i64 }

/** SamplingRate: a whole percentage, or the string "headers" in any case (0). */
const samplingRate: GoType = {
  custom(n, ctx, path, prev) {
    if (n.k === 'str' && n.v.toLowerCase() === 'headers') return 0
    return decodeGo(n, i64, ctx, path, prev)
  },
}
const exportTypeStruct = struct({
  name: str, subject: str, type: exportType, token_req: bool, revocations,
  response_type: str, response_threshold: i64,
  service_latency: { ptr: struct({ sampling: samplingRate, results: str }) },
  account_token_position: 'uint', advertise: bool, allow_trace: bool, ...info,
})
const natsLimits = { subs: i64, data: i64, payload: i64 }
const accountLimits = { imports: i64, exports: i64, wildcards: bool, disallow_bearer: bool, conn: i64, leaf: i64 }
const jetStreamLimits = {
  mem_storage: i64, disk_storage: i64, streams: i64, consumer: i64, max_ack_pending: i64,
  mem_max_stream_bytes: i64, disk_max_stream_bytes: i64, max_bytes_required: bool,
}
const permission = struct({ allow: strings, deny: strings })
const permissions = { pub: permission, sub: permission, resp: { ptr: struct({ max: i64, ttl: i64 }) } as GoType }

/** CIDRList: a list of strings or one comma-separated string. */
const cidrList: GoType = {
  custom(n, ctx, path) {
    if (n.k === 'null') return null
    if (n.k === 'str') return n.v.split(',')
    return decodeGo(n, strings, ctx, path)
  },
}
const userScope = struct({
  kind: str, key: str, role: str, description: str,
  template: struct({
    ...permissions,
    src: cidrList, times: { slice: struct({ start: str, end: str }) }, times_location: str,
    ...natsLimits, bearer_token: bool, allowed_connection_types: strings,
  }),
})

/** A signing key as jwt keeps it: the key, and its scope when it is scoped. */
export interface SigningKeyEntry {
  key: string
  scoped: boolean
}

/**
 * SigningKeys.UnmarshalJSON: a list whose strings are keys and whose objects with `kind: user_scope` are
 * scoped keys; an object of any other kind fails the decode; numbers, booleans and nulls are skipped.
 */
const signingKeys: GoType = {
  custom(n, ctx, path, prev) {
    if (n.k === 'null') return null
    if (n.k !== 'arr') return void ctx.errors.push(`${path}: cannot unmarshal ${n.k} into a list`)
    // jwt adds to the keys it already holds (the list given twice under keys differing in case)
    const out: SigningKeyEntry[] = Array.isArray(prev) ? (prev as SigningKeyEntry[]) : []
    n.items.forEach((item, i) => {
      if (item.k === 'str') out.push({ key: item.v, scoped: false })
      else if (item.k === 'obj') {
        const kind = item.entries.filter(([k]) => k === 'kind').at(-1)?.[1]
        if (kind?.k !== 'str' || kind.v !== 'user_scope') return void ctx.errors.push(`${path}[${i}]: unknown signing key scope`)
        const inner: DecodeContext = { errors: ctx.errors, viaFloat: true }
        const scope = decodeGo(item, userScope, inner, `${path}[${i}]`) as { key?: string } | undefined
        out.push({ key: scope?.key ?? '', scoped: true })
      }
    })
    return out
  },
}

const accountV2 = struct({
  imports: { slice: { ptr: importType } },
  exports: { slice: { ptr: exportTypeStruct } },
  limits: struct({ ...natsLimits, ...accountLimits, ...jetStreamLimits, tiered_limits: { map: struct(jetStreamLimits) } }),
  signing_keys: signingKeys,
  revocations,
  default_permissions: struct(permissions),
  mappings: { map: { slice: struct({ subject: str, weight: 'uint8', cluster: str }) } },
  authorization: struct({ auth_users: strings, allowed_accounts: strings, xkey: str }),
  trace: { ptr: struct({ dest: str, sampling: i64 }) },
  cluster_traffic: str,
  ...info,
  ...genericFields,
})

// v1 accounts (decoder_account.go): fewer fields, and signing keys are plain strings.
const accountV1 = struct({
  imports: { slice: { ptr: importType } },
  exports: { slice: { ptr: exportTypeStruct } },
  limits: struct({ ...natsLimits, ...accountLimits }),
  signing_keys: {
    custom: (n: JsonNode, ctx: DecodeContext, path: string) =>
      (decodeGo(n, strings, ctx, path) as string[] | null | undefined)?.map((key) => ({ key: key ?? '', scoped: false })),
  },
  revocations,
  ...genericFields,
})

const activationNats = struct({ subject: str, kind: exportType, issuer_account: str, ...genericFields })

const identifier = struct({ type: str, nats: struct(genericFields) })

/** Claims as Go decoded them: standard claims, the v1 `type`, and `nats`. */
export interface GoClaims {
  aud?: string
  exp?: number
  jti?: string
  iat?: number
  iss?: string
  name?: string
  nbf?: number
  sub?: string
  /** Set only in v1 claims, where the type lived outside `nats`. */
  type?: string
  issuer_account?: string
  nats: Record<string, unknown>
}

export type GoDecoded =
  | { ok: true; version: 1 | 2; kind: string; claims: GoClaims }
  | { ok: false; error: string }

const SCHEMAS = { account: { 1: accountV1, 2: accountV2 }, activation: { 1: activationNats, 2: activationNats } } as const

/**
 * jwt's loadClaims for the kinds the signer reads: the claim version is 1 when a top-level `type` is set,
 * otherwise `nats.version`; then the payload is decoded into that version's struct. Any error Go would
 * return (syntax, a wrong JSON type, an integer written as a fraction, an unknown version) is returned.
 */
export function decodeGoClaims(payloadJson: string, expect: 'account' | 'activation'): GoDecoded {
  let root: JsonNode
  try {
    root = parseJsonNodes(payloadJson)
  } catch (e) {
    return { ok: false, error: `payload is not JSON (${(e as Error).message})` }
  }
  const ctx: DecodeContext = { errors: [], viaFloat: false }
  const id = decodeGo(root, identifier, ctx, 'claims') as { type?: string; nats?: { type?: string; version?: number } } | undefined
  if (ctx.errors.length > 0 || id === undefined) return { ok: false, error: ctx.errors[0] ?? 'payload is not an object' }
  const v1 = (id.type ?? '') !== ''
  const version = v1 ? 1 : (id.nats?.version ?? 0)
  const kind = v1 ? id.type! : (id.nats?.type ?? '')
  if (version > 2) return { ok: false, error: 'JWT was generated by a newer version' }
  if (kind !== expect) return { ok: true, version: v1 ? 1 : 2, kind, claims: { nats: {} } }
  if (version !== 1 && version !== 2) return { ok: false, error: `library supports version 2 or less - received ${version}` }
  const top: Record<string, GoType> = { ...claimsData, nats: SCHEMAS[expect][version] }
  if (v1) Object.assign(top, { type: str, tags: strings, issuer_account: str })
  const claims = decodeGo(root, struct(top), ctx, 'claims') as GoClaims
  if (ctx.errors.length > 0) return { ok: false, error: ctx.errors.slice(0, 3).join('; ') }
  claims.nats ??= {}
  return { ok: true, version, kind, claims }
}
