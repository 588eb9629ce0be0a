import type { NatsConnection } from '@nats-io/nats-core'
import { AppError, subjects, validateAccount, validateActivation, type ActivationPutReply } from '../shared/index.ts'
import { claimsOf, heldAccount, storedJwt, type HeldAccount } from './accounts.ts'
import { CliError } from './cli-error.ts'
import type { Found } from './import-sources.ts'
import { askResolver, request } from './requests.ts'

/**
 * What became of one token. `store`: the mesh lacks it and the signer accepts it (dry run: would store);
 * `stored`: pushed and acknowledged; `current`: the mesh holds these exact bytes; `newer`: the mesh holds a
 * later version (a fleet server that missed a push); `refused`: the signer or the store's rules say no;
 * `failed`: no verdict (no reply, a transport error).
 */
export type Outcome = 'store' | 'stored' | 'current' | 'newer' | 'refused' | 'failed' | 'skipped'

export interface ImportResult {
  source: string
  kind: 'account' | 'activation' | 'file'
  account: string | undefined
  name: string | undefined
  outcome: Outcome
  message: string
  reason?: string
}

function base(f: Found): Pick<ImportResult, 'source' | 'kind' | 'account' | 'name'> {
  const c = claimsOf(f.jwt)
  return { source: f.source, kind: f.kind, account: typeof c?.sub === 'string' ? c.sub : undefined, name: c?.name }
}

const refusal = (e: unknown): Pick<ImportResult, 'outcome' | 'message' | 'reason'> => {
  if (e instanceof AppError) return { outcome: e.code === 'VALIDATION_UNAVAILABLE' ? 'failed' : 'refused', message: e.message, reason: e.code }
  if (e instanceof CliError) return { outcome: 'failed', message: e.message }
  throw e
}

/**
 * The verdict a push of this account JWT would get, without storing anything: the resolver's rules on what
 * it holds (the same token is current, an older `iat` than the stored version or the deletion is refused;
 * see services/resolver/save-rule.ts), then the signer's `validate`, which a push goes through too.
 */
async function judgeAccount(nc: NatsConnection, f: Found, timeoutMs: number): Promise<ImportResult> {
  const b = base(f)
  if (b.account === undefined) return { ...b, outcome: 'refused', message: 'the JWT names no account' }
  let held: HeldAccount
  try {
    held = await heldAccount(nc, b.account, timeoutMs)
  } catch (e) {
    return { ...b, ...refusal(e) }
  }
  const iat = claimsOf(f.jwt)?.iat ?? 0
  if (held.state === 'stored' && held.jwt === f.jwt) return { ...b, outcome: 'current', message: 'jwt already current' }
  const storedIat = held.state === 'stored' ? (claimsOf(held.jwt)?.iat ?? 0) : undefined
  if (storedIat !== undefined && iat < storedIat) {
    return { ...b, outcome: 'newer', message: `the mesh holds a newer version (iat ${storedIat} > ${iat})` }
  }
  if (held.state === 'deleted' && held.deleted !== undefined && iat < held.deleted.iat) {
    return { ...b, outcome: 'refused', message: `deleted in the mesh after this version was issued (iat ${iat} < ${held.deleted.iat})`, reason: 'JWT_OUTDATED' }
  }
  try {
    const v = await validateAccount(nc, f.jwt, { storedIat })
    return { ...b, outcome: 'store', message: v.jwt === undefined ? 'valid' : 'valid (the operator will sign it: a managed account)' }
  } catch (e) {
    return { ...b, ...refusal(e) }
  }
}

/** The signer's verdict on an activation token, against the exporter's JWT the mesh holds or will hold. */
async function judgeActivation(nc: NatsConnection, f: Found, exporters: Map<string, string>, timeoutMs: number): Promise<ImportResult> {
  const c = claimsOf(f.jwt) as { sub?: string; iss?: string; nats?: { issuer_account?: string } } | undefined
  const b = { ...base(f), account: c?.sub }
  const exporter = c?.nats?.issuer_account ?? c?.iss ?? ''
  try {
    const exporterJwt = exporters.get(exporter) ?? (await storedJwt(nc, exporter, timeoutMs))
    if (exporterJwt === undefined) return { ...b, outcome: 'refused', message: `its exporting account ${exporter} is not in the mesh`, reason: 'NOT_FOUND' }
    await validateActivation(nc, { token: f.jwt, exporterJwt })
    return { ...b, outcome: 'store', message: 'valid' }
  } catch (e) {
    return { ...b, ...refusal(e) }
  }
}

export function judge(nc: NatsConnection, f: Found, exporters: Map<string, string>, timeoutMs: number): Promise<ImportResult> {
  return f.kind === 'account' ? judgeAccount(nc, f, timeoutMs) : judgeActivation(nc, f, exporters, timeoutMs)
}

/**
 * Pushes an account JWT the way `mesh push` does (`$SYS.REQ.CLAIMS.UPDATE`, our resolver's reply among the
 * servers'), so it is validated and stored as any push is, and delivered to every server.
 */
async function pushAccount(nc: NatsConnection, f: Found, judged: ImportResult, timeoutMs: number): Promise<ImportResult> {
  try {
    const r = await askResolver(nc, subjects.claimsUpdate, f.jwt, timeoutMs)
    if (r.error !== undefined) {
      const outcome = r.error.reason === 'VALIDATION_UNAVAILABLE' ? 'failed' : 'refused'
      return { ...judged, outcome, message: r.error.description, reason: r.error.reason }
    }
    const message = (r.data as { message?: string } | undefined)?.message ?? ''
    return { ...judged, outcome: message === 'jwt already current' ? 'current' : 'stored', message }
  } catch (e) {
    return { ...judged, ...refusal(e) }
  }
}

async function putActivation(nc: NatsConnection, f: Found, judged: ImportResult, timeoutMs: number): Promise<ImportResult> {
  try {
    const r = (await request(nc, subjects.resolverActivationPut, f.jwt, timeoutMs)).json<Partial<ActivationPutReply>>()
    return { ...judged, outcome: r.outcome === 'current' ? 'current' : 'stored', message: `activation ${r.outcome ?? 'stored'}` }
  } catch (e) {
    return { ...judged, ...refusal(e) }
  }
}

/** Stores what `judge` found missing; anything else is already final. */
export function apply(nc: NatsConnection, f: Found, judged: ImportResult, timeoutMs: number): Promise<ImportResult> {
  if (judged.outcome !== 'store') return Promise.resolve(judged)
  return f.kind === 'account' ? pushAccount(nc, f, judged, timeoutMs) : putActivation(nc, f, judged, timeoutMs)
}
