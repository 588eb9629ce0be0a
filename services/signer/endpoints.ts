import {
  batchBody,
  itemRefusal,
  addHealthEndpoint,
  errors,
  MAX_VALIDATE_BATCH,
  nowSeconds,
  peekClaims,
  SignerHeader,
  subjects,
  type AccountVerdict,
  type BatchVerdict,
  type Logger,
  type ValidateItem,
  type DeleteVerdict,
  type MeshService,
  type ValidateEnvelope,
  type NatsConnection,
  verifyJwtAhead,
} from '../../shared/index.ts'
import type { ServiceMsg } from '@nats-io/services'
import { validateAccountJwt } from './account-rules.ts'
import { validateActivationToken } from './activation-rules.ts'
import type { SignerConfig } from './config.ts'
import { validateDeleteRequest } from './delete-rules.ts'
import { signManagedAccount } from './managed-policy.ts'

/** How far a delete request's `iat` may be from now: nsc signs it when it sends it (protocol.md §6). */
export const DELETE_WINDOW_SECONDS = 120

function storedIatOf(msg: ServiceMsg): number | undefined {
  const raw = msg.headers?.get(SignerHeader.storedIat)
  if (raw === undefined || raw === '') return undefined
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < 0) throw errors.requestInvalid(`${SignerHeader.storedIat} is not a whole number`)
  return n
}

function tokenOf(msg: ServiceMsg): string {
  if (msg.data.length === 0) throw errors.jwtMalformed('request body is empty')
  return msg.string()
}

/** The JWT to validate and the exporters' stored JWTs, from a bare or an enveloped request. */
function validateRequestOf(msg: ServiceMsg): { token: string; exporters: Record<string, string> } {
  const token = tokenOf(msg)
  if (msg.headers?.get(SignerHeader.envelope) !== 'json') return { token, exporters: {} }
  let body: unknown
  try {
    body = JSON.parse(token)
  } catch {
    throw errors.requestInvalid('envelope is not JSON')
  }
  const { jwt, exporters } = (typeof body === 'object' && body !== null ? body : {}) as Partial<ValidateEnvelope>
  const valid =
    typeof jwt === 'string' && jwt !== '' && typeof exporters === 'object' && exporters !== null && !Array.isArray(exporters) &&
    Object.values(exporters).every((v) => typeof v === 'string')
  if (!valid) throw errors.requestInvalid('envelope must be {"jwt": string, "exporters": {id: string}}')
  return { token: jwt, exporters }
}

/** The verdict on one account JWT, its signature already checked or left to decodeJwt. */
function judgeAccount(config: SignerConfig, item: Required<Pick<ValidateItem, 'jwt' | 'exporters'>> & ValidateItem, log: Logger): AccountVerdict {
  const now = nowSeconds()
  const v = validateAccountJwt(item.jwt, config.trust, { account: item.account, now, exporters: item.exporters })
  if (!v.selfSigned) return { id: v.id }
  if (config.signingKey === undefined) throw errors.selfSignedRefused()
  const jwt = signManagedAccount(v.claims, config.signingKey, config.policy, item.storedIat, now)
  log.info({ account: v.id }, 'managed account signed')
  return { id: v.id, jwt }
}

const isWhole = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isStringMap = (v: unknown) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string')

/** The items of a validate-batch request: a JSON list of {jwt, account?, storedIat?, exporters?}. */
function validateBatchOf(msg: ServiceMsg): ValidateItem[] {
  const body = batchBody(msg, MAX_VALIDATE_BATCH, 'items')
  for (const item of body) {
    const { jwt, account, storedIat, exporters } = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>
    const valid =
      typeof jwt === 'string' && jwt !== '' && (account === undefined || typeof account === 'string') &&
      (storedIat === undefined || isWhole(storedIat)) && (exporters === undefined || isStringMap(exporters))
    if (!valid) throw errors.requestInvalid('items must be {"jwt": string, "account"?: string, "storedIat"?: number, "exporters"?: {id: string}}')
  }
  return body as ValidateItem[]
}

export function addSignerEndpoints(service: MeshService, config: SignerConfig, nc: NatsConnection): void {
  service.endpoint({
    name: 'validate',
    subject: subjects.signerValidate,
    description: 'Validates an account JWT against the trusted operator; signs self-signed ones in managed mode',
    async handle(msg, log) {
      const account = msg.headers?.get(SignerHeader.account) || undefined
      const storedIat = storedIatOf(msg)
      const { token, exporters } = validateRequestOf(msg)
      // The signature is checked on the thread pool, not on the event loop the other requests wait on.
      await verifyJwtAhead(token)
      return JSON.stringify(judgeAccount(config, { jwt: token, account, storedIat, exporters }, log))
    },
  })
  service.endpoint({
    name: 'validate-batch',
    subject: subjects.signerValidateBatch,
    description: `Validates up to ${MAX_VALIDATE_BATCH} account JWTs in one request (JSON list), one verdict each, in order`,
    handle(msg, log) {
      const items = validateBatchOf(msg)
      // One decode per JWT, signature included, on the event loop: on the 2 cores measured, handing each
      // verification to the thread pool cost more (a second parse, a callback) than it spared.
      const verdicts = items.map((item): BatchVerdict => {
        try {
          return { verdict: judgeAccount(config, { ...item, exporters: item.exporters ?? {} }, log) }
        } catch (e) {
          return itemRefusal(e, log)
        }
      })
      return JSON.stringify(verdicts)
    },
  })
  service.endpoint({
    name: 'validate-delete',
    subject: subjects.signerValidateDelete,
    description: 'Validates an operator-signed request to delete accounts (freshness, trust, not the system account)',
    async handle(msg) {
      const token = tokenOf(msg)
      await verifyJwtAhead(token)
      const v = validateDeleteRequest(token, config.trust, {
        now: nowSeconds(),
        windowSeconds: DELETE_WINDOW_SECONDS,
        // Replays are remembered by the resolver, which holds the durable store.
        seen: () => false,
      })
      const verdict: DeleteVerdict = {
        accounts: v.accounts,
        issuer: v.issuer,
        hash: v.hash,
        iat: v.iat,
        freshUntil: v.iat + DELETE_WINDOW_SECONDS,
      }
      return JSON.stringify(verdict)
    },
  })
  service.endpoint({
    name: 'validate-activation',
    subject: subjects.signerValidateActivation,
    description: "Validates an activation token against the exporting account's current JWT",
    async handle(msg) {
      let req: unknown
      try {
        req = msg.json()
      } catch {
        throw errors.requestInvalid('body is not JSON')
      }
      const { token, exporterJwt } = (typeof req === 'object' && req !== null ? req : {}) as Record<string, unknown>
      if (typeof token !== 'string' || typeof exporterJwt !== 'string') {
        throw errors.requestInvalid('body must be {"token": string, "exporterJwt": string}')
      }
      return JSON.stringify(validateActivationToken(token, exporterJwt))
    },
  })
  addHealthEndpoint(service, nc, {
    subject: subjects.signerHealth,
    description: 'Reports the NATS connection, the trusted operator and whether managed accounts can be signed',
    async check() {
      return { ok: true, operator: config.trust.operatorKey, managed: config.signingKey !== undefined }
    },
  })
}
