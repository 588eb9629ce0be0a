import {
  activationHashId,
  decodeJwt,
  errors,
  isAccountKey,
  isExpired,
  JwtAlgorithm,
  nowSeconds,
  type ActivationVerdict,
} from '../../shared/index.ts'
import { isContainedIn, subjectProblems } from './rules/subjects.ts'

const isValidSubject = (s: unknown): s is string => typeof s === 'string' && subjectProblems(s).length === 0

interface ActivationNats {
  type?: unknown
  version?: unknown
  subject?: unknown
  kind?: unknown
  issuer_account?: unknown
}

interface ExporterNats {
  signing_keys?: unknown
  exports?: unknown
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Signing keys are plain keys or, when scoped, objects carrying the key. */
function signingKeysOf(nats: ExporterNats): string[] {
  if (!Array.isArray(nats.signing_keys)) return []
  return nats.signing_keys.map((k: unknown) => (isObject(k) ? k.key : k)).filter((k): k is string => typeof k === 'string')
}

/**
 * Checks an activation token before it is hosted (protocol.md §5): a v2 activation, signed by the exporting
 * account or one of its signing keys, for an importer account, matching an export of that kind that exists
 * in the exporter's current JWT and has not revoked it. Expired tokens are refused: nobody could use them.
 */
export function validateActivationToken(token: string, exporterJwt: string, now = nowSeconds()): ActivationVerdict {
  const { header, claims } = decodeJwt<ActivationNats>(token)
  const n = claims.nats
  if (header.alg !== JwtAlgorithm.v2) throw errors.activationInvalid('v1 (ed25519) tokens are not accepted')
  if (n.type !== 'activation') throw errors.jwtWrongType('activation', typeof n.type === 'string' ? n.type : '')
  if (n.version !== 2) throw errors.activationInvalid('nats.version is not 2')
  if (!isAccountKey(claims.iss)) throw errors.activationInvalid('not issued by an account key')
  if (!isAccountKey(claims.sub)) throw errors.activationInvalid('subject is not the importing account public key')
  if (n.issuer_account !== undefined && !isAccountKey(n.issuer_account)) {
    throw errors.activationInvalid('issuer_account is not an account public key')
  }
  if (!isValidSubject(n.subject)) throw errors.activationInvalid('nats.subject is not a valid subject')
  if (n.kind !== 'stream' && n.kind !== 'service') throw errors.activationInvalid('nats.kind is not stream or service')
  if (isExpired(claims, now)) throw errors.jwtExpired()

  const exporter = typeof n.issuer_account === 'string' ? n.issuer_account : claims.iss
  let exp
  try {
    exp = decodeJwt<ExporterNats>(exporterJwt).claims
  } catch {
    throw errors.activationInvalid(`the exporting account ${exporter} has no valid stored jwt`)
  }
  if (exp.sub !== exporter) throw errors.activationInvalid(`the stored jwt is not that of the exporting account ${exporter}`)
  if (claims.iss !== exporter && !signingKeysOf(exp.nats).includes(claims.iss)) {
    throw errors.activationInvalid(`issuer ${claims.iss} is not a signing key of the exporting account ${exporter}`)
  }

  const subject = n.subject
  const exports = Array.isArray(exp.nats.exports) ? exp.nats.exports.filter(isObject) : []
  const match = exports.find((e) => e.type === n.kind && isValidSubject(e.subject) && isContainedIn(subject, e.subject))
  if (match === undefined) throw errors.activationInvalid(`${exporter} has no ${n.kind} export containing ${subject}`)
  const revoked = isObject(match.revocations) ? [match.revocations[claims.sub], match.revocations['*']] : []
  if (revoked.some((at) => typeof at === 'number' && at >= claims.iat)) {
    throw errors.activationInvalid(`the export ${String(match.subject)} revoked this importer`)
  }
  return {
    hashId: activationHashId(claims.iss, claims.sub, subject),
    iat: claims.iat,
    exporter,
    importer: claims.sub,
    subject,
    kind: n.kind,
  }
}
