import { decodeJwt, errors, type DecodedJwt } from '../../shared/index.ts'
import { decodeGoClaims, type GoClaims } from './go-claims.ts'

/** A token as both our decoder (signature, shape) and Go's (field types, version) read it. */
export interface GoToken {
  decoded: DecodedJwt
  /** The claims exactly as nats-server holds them after decoding. */
  go: GoClaims
  version: 1 | 2
  /** The claim kind Go read (`nats.type`, or the top-level `type` of a v1 claim). */
  kind: string
}

const STANDARD = ['iss', 'sub', 'iat', 'exp', 'nbf'] as const

/**
 * Decodes a token as nats-io/jwt's Decode does for the given kind: the claims' version decides what the
 * signature covers, and the payload must decode into jwt's structs. Throws JWT_MALFORMED when Go could not
 * read it, or when Go would read different standard claims than ours (keys differing only in case).
 * A token of another kind decodes fine here; the caller refuses it with the kind it found.
 */
export function decodeGoToken(token: string, expect: 'account' | 'activation'): GoToken {
  const parts = token.split('.')
  const go = parts.length === 3 ? decodeGoClaims(Buffer.from(parts[1]!, 'base64url').toString('utf8'), expect) : undefined
  // Shape, size and signature problems are reported by decodeJwt first, in nats-server's words.
  const decoded = decodeJwt(token, { claimVersion: go?.ok ? go.version : undefined })
  if (go === undefined || !go.ok) throw errors.jwtMalformed(`nats-server cannot decode it: ${go?.error ?? 'malformed'}`)
  if (go.kind === expect) {
    const ours = decoded.claims as unknown as Record<string, unknown>
    const theirs = go.claims as unknown as Record<string, unknown>
    const differs = STANDARD.find((k) => (ours[k] ?? 0) !== (theirs[k] ?? 0))
    if (differs !== undefined) {
      throw errors.jwtMalformed(`the ${differs} claim reads differently to nats-server (keys that differ only in case)`)
    }
  }
  return { decoded, go: go.claims, version: go.version, kind: go.kind }
}
