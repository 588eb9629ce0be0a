import { headers, type NatsConnection } from '@nats-io/nats-core'
import { perConnection } from './coalesce.ts'
import { AppError, appErrorFrom, errors } from './errors.ts'
import { isNoResponders, serviceErrorOf } from './service-error.ts'
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
  /** Set only for a managed account: the re-signed JWT to store instead of the one sent. */
  jwt?: string
}

/** One JWT of a validate-batch request: what the headers and the envelope carry for a single one. */
export interface ValidateItem {
  jwt: string
  account?: string
  storedIat?: number
  exporters?: Record<string, string>
}

/** One answer of a validate-batch reply, in the order of the request's items. */
export type BatchVerdict = { verdict: AccountVerdict } | { error: { code: string; status: number; message: string } }

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
  const err = serviceErrorOf(reply)
  if (err !== undefined) throw err.code === 'INTERNAL' ? errors.validationUnavailable(err.message) : err
  return reply.json<T>()
}

function validateOne(nc: NatsConnection, item: ValidateItem): Promise<AccountVerdict> {
  const h: Record<string, string> = {}
  if (item.account !== undefined) h[SignerHeader.account] = item.account
  if (item.storedIat !== undefined) h[SignerHeader.storedIat] = String(item.storedIat)
  // The common case stays a bare JWT; the envelope is used only when there are exporters to check against.
  if (item.exporters === undefined || Object.keys(item.exporters).length === 0) {
    return ask<AccountVerdict>(nc, subjects.signerValidate, item.jwt, h)
  }
  h[SignerHeader.envelope] = 'json'
  const body: ValidateEnvelope = { jwt: item.jwt, exporters: item.exporters }
  return ask<AccountVerdict>(nc, subjects.signerValidate, JSON.stringify(body), h)
}

/** Most JWTs one validate-batch request carries; the signer refuses more. */
export const MAX_VALIDATE_BATCH = 128
/**
 * Most JWTs the resolver puts in one request. The signer answers a batch when all of it is judged, so a large
 * one holds every push in it meanwhile; small ones keep the resolver storing the first while the signer judges
 * the next, and still save most of the per-request cost. Measured on the import bench (2 cores): 8 at a time
 * 1,539–1,567 pushes/s against 917–1,182 with up to 128, for the same CPU per push.
 */
const SEND_BATCH = 8
const itemBytes = (i: ValidateItem) =>
  i.jwt.length + 64 + Object.entries(i.exporters ?? {}).reduce((n, [k, v]) => n + k.length + v.length + 8, 0)

async function validateMany(nc: NatsConnection, items: ValidateItem[]): Promise<Array<AccountVerdict | Error>> {
  let answers: BatchVerdict[]
  try {
    answers = await ask<BatchVerdict[]>(nc, subjects.signerValidateBatch, JSON.stringify(items))
  } catch (e) {
    // A signer from before batches (a rolling upgrade) has no validate-batch endpoint: ask it one by one.
    if (!isNoResponders((e as Error).cause)) throw e
    return Promise.all(items.map((i) => validateOne(nc, i).catch((err: unknown) => err as Error)))
  }
  if (!Array.isArray(answers)) throw errors.validationUnavailable('validate-batch answered no list')
  return answers.map((a) => {
    if ('verdict' in a) return a.verdict
    const err = appErrorFrom(a.error)
    return err.code === 'INTERNAL' ? errors.validationUnavailable(err.message) : err
  })
}


const batcherOf = perConnection<ValidateItem, AccountVerdict>((nc) => ({
  one: (item) => validateOne(nc, item),
  many: (items) => validateMany(nc, items),
  size: itemBytes,
  maxItems: SEND_BATCH,
}))

/**
 * Asks the signer to validate (and, for a managed account, sign) an account JWT. Throws its AppError.
 * `exporters` are the stored JWTs of accounts it imports from with activation tokens: the signer checks
 * those tokens against them (issuer, export, revocations); an exporter left out is simply not checked.
 * JWTs asked about in the same moment go to the signer in one validate-batch request, one verdict each.
 */
export function validateAccount(
  nc: NatsConnection,
  jwt: string,
  opts: { account?: string; storedIat?: number; exporters?: Record<string, string> } = {},
): Promise<AccountVerdict> {
  const item: ValidateItem = { jwt }
  if (opts.account !== undefined) item.account = opts.account
  if (opts.storedIat !== undefined) item.storedIat = opts.storedIat
  if (opts.exporters !== undefined && Object.keys(opts.exporters).length > 0) item.exporters = opts.exporters
  return batcherOf(nc).submit(item)
}

/** Asks the signer to validate an operator-signed delete request. Throws its AppError. */
export function validateDelete(nc: NatsConnection, jwt: string): Promise<DeleteVerdict> {
  return ask<DeleteVerdict>(nc, subjects.signerValidateDelete, jwt)
}

/** Asks the signer to validate an activation token against the exporter's JWT. Throws its AppError. */
export function validateActivation(nc: NatsConnection, req: ActivationRequest): Promise<ActivationVerdict> {
  return ask<ActivationVerdict>(nc, subjects.signerValidateActivation, JSON.stringify(req))
}
