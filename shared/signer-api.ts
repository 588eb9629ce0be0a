import { headers, type NatsConnection } from '@nats-io/nats-core'
import { AppError, appErrorFrom, errors } from './errors.ts'
import { subjects } from './subjects.ts'

/**
 * The signer's internal API. The JWT travels as the raw body (it can be close to NATS's 1 MiB payload
 * limit, so no JSON envelope); parameters travel in headers, which is safe on these internal subjects.
 */
export const SignerHeader = {
  /** The account id named by a per-account subject: the JWT's `sub` must equal it. */
  account: 'Mesh-Account',
  /** The `iat` of the stored version, so a re-signed JWT gets a strictly greater one. */
  storedIat: 'Mesh-Stored-Iat',
  /** `json`: the body is a ValidateEnvelope rather than the bare JWT. */
  envelope: 'Mesh-Envelope',
} as const

/** The validate request's body when it carries more than the JWT. */
export interface ValidateEnvelope {
  jwt: string
  /** Stored JWTs of the accounts the JWT imports from with a token, by account id (see validateAccount). */
  exporters: Record<string, string>
}

/** The signer's answer to a valid account JWT. */
export interface AccountVerdict {
  id: string
  iat: number
  exp: number
  /** Set only for a managed account: the re-signed JWT to store instead of the one sent. */
  jwt?: string
}

/** The signer's answer to a valid delete request. */
export interface DeleteVerdict {
  accounts: string[]
  issuer: string
  /** sha256 (hex) of the whole token: the replay-memory key (protocol.md §6). */
  hash: string
  iat: number
  /** Until when (seconds) the request passes the freshness check: it must be remembered that long. */
  freshUntil: number
}

/** The signer's answer to a valid activation token (protocol.md §5). */
export interface ActivationVerdict {
  hashId: string
  iat: number
  exporter: string
  importer: string
  subject: string
  kind: string
}

/** What the signer needs to check an activation: the token and the exporting account's current JWT. */
export interface ActivationRequest {
  token: string
  exporterJwt: string
}

const SIGNER_TIMEOUT_MS = 2000

async function ask<T>(nc: NatsConnection, subject: string, body: string, h?: Record<string, string>): Promise<T> {
  const hdrs = headers()
  for (const [k, v] of Object.entries(h ?? {})) hdrs.set(k, v)
  let reply
  try {
    reply = await nc.request(subject, body, { timeout: SIGNER_TIMEOUT_MS, headers: hdrs })
  } catch (e) {
    throw errors.validationUnavailable(e)
  }
  if (reply.headers?.get('Nats-Service-Error-Code')) {
    let wire: unknown
    try {
      wire = reply.json()
    } catch {
      wire = undefined
    }
    const err = appErrorFrom(wire)
    if (err.code === 'INTERNAL') throw errors.validationUnavailable(reply.headers.get('Nats-Service-Error'))
    throw err
  }
  return reply.json<T>()
}

/**
 * Asks the signer to validate (and, for a managed account, sign) an account JWT. Throws its AppError.
 * `exporters` are the stored JWTs of accounts it imports from with activation tokens: the signer checks
 * those tokens against them (issuer, export, revocations); an exporter left out is simply not checked.
 */
export function validateAccount(
  nc: NatsConnection,
  jwt: string,
  opts: { account?: string; storedIat?: number; exporters?: Record<string, string> } = {},
): Promise<AccountVerdict> {
  const h: Record<string, string> = {}
  if (opts.account !== undefined) h[SignerHeader.account] = opts.account
  if (opts.storedIat !== undefined) h[SignerHeader.storedIat] = String(opts.storedIat)
  // The common case stays a bare JWT; the envelope is used only when there are exporters to check against.
  if (opts.exporters === undefined || Object.keys(opts.exporters).length === 0) {
    return ask<AccountVerdict>(nc, subjects.signerValidate, jwt, h)
  }
  h[SignerHeader.envelope] = 'json'
  const body: ValidateEnvelope = { jwt, exporters: opts.exporters }
  return ask<AccountVerdict>(nc, subjects.signerValidate, JSON.stringify(body), h)
}

/** Asks the signer to validate an operator-signed delete request. Throws its AppError. */
export function validateDelete(nc: NatsConnection, jwt: string): Promise<DeleteVerdict> {
  return ask<DeleteVerdict>(nc, subjects.signerValidateDelete, jwt)
}

/** Asks the signer to validate an activation token against the exporter's JWT. Throws its AppError. */
export function validateActivation(nc: NatsConnection, req: ActivationRequest): Promise<ActivationVerdict> {
  return ask<ActivationVerdict>(nc, subjects.signerValidateActivation, JSON.stringify(req))
}
