import {
  AppError,
  errors,
  isAccountKey,
  subjects,
  validateDelete,
  type DeleteVerdict,
  type Logger,
  type MeshService,
  type NatsConnection,
} from '../../shared/index.ts'
import type { ServiceMsg } from '@nats-io/services'
import type { AccountStore } from './account-store.ts'
import type { ClaimReplies } from './claim-reply.ts'
import type { Delivery } from './delivery.ts'
import { asksForPurge, guardJetStream, type JetStreamUsageMemory } from './jetstream-usage.ts'

/**
 * Refusals of a delete request that servers act on anyway: they check neither time nor replay (protocol.md
 * §6), so they may have deleted accounts we keep. Our stored versions go out again to bring them back.
 */
const SERVERS_MAY_HAVE_DELETED = new Set<string>([
  'JWT_EXPIRED',
  'JWT_NOT_YET_VALID',
  'REQUEST_STALE',
  'REQUEST_REPLAYED',
  'JETSTREAM_IN_USE',
])

interface DeleteDeps {
  nc: NatsConnection
  store: AccountStore
  replies: ClaimReplies
  delivery: Delivery
  /** RESOLVER_ALLOW_DELETE: when false every request is refused and nothing is deleted. */
  allowDelete: boolean
  /** The servers' recent JetStream usage, for requests they act on before we can ask (nsc's DELETE). */
  jetstream?: JetStreamUsageMemory
}

interface Peeked {
  issuer: string
  accounts: string[]
}

/** Who asked and for what, read without trusting it: only to word the reply and to restore after a refusal. */
function peek(token: string): Peeked {
  try {
    const c = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      sub?: unknown
      nats?: { accounts?: unknown }
    }
    const accounts = Array.isArray(c.nats?.accounts) ? c.nats.accounts.filter(isAccountKey) : []
    return { issuer: typeof c.sub === 'string' ? c.sub.slice(0, 64) : 'n/a', accounts }
  } catch {
    return { issuer: 'n/a', accounts: [] }
  }
}

/**
 * Whether every account a remembered request named is still deleted by that request: then hearing it again
 * (the notifier re-broadcasts each accepted delete to the servers, and we subscribe to the same subject) is
 * an idempotent success. Once an account was re-created, or deleted again by another request, a replay is
 * refused as one.
 */
async function stillDeletedBy(store: AccountStore, v: DeleteVerdict): Promise<boolean> {
  for (const id of v.accounts) {
    if ((await store.get(id)) !== undefined) return false
    const tomb = await store.tombstoneOf(id)
    if (tomb !== undefined && tomb.request !== v.hash) return false
  }
  return true
}

async function applyDelete(deps: DeleteDeps, msg: ServiceMsg, log: Logger): Promise<string> {
  if (msg.data.length === 0) throw errors.jwtMalformed('request body is empty')
  const token = msg.string()
  if (!deps.allowDelete) return refuseWhileDisabled(deps, token, log)
  const v = await validateDelete(deps.nc, token)
  // Only trusted requests get this far: streams are refused, or purged when the signed request asks.
  await guardJetStream(deps.nc, v.accounts, asksForPurge(token), log, deps.jetstream)
  let result
  try {
    result = await deps.store.remove({
      token,
      accounts: v.accounts,
      iat: v.iat,
      hash: v.hash,
      rememberUntil: v.freshUntil,
      via: msg.subject,
    })
  } catch (e) {
    if (!(e instanceof AppError && e.code === 'REQUEST_REPLAYED' && (await stillDeletedBy(deps.store, v)))) throw e
    log.debug({ issuer: v.issuer, accounts: v.accounts }, 'delete request heard again (our own re-broadcast): already applied')
    return deps.replies.ok(`deleted ${v.accounts.length} accounts`)
  }
  for (const change of result.changes) deps.delivery.accepted(change)
  log.info({ issuer: v.issuer, accounts: result.changes.map((c) => c.id), seqs: result.changes.map((c) => c.seq) }, 'accounts deleted')
  return deps.replies.ok(`deleted ${result.deleted} accounts`)
}

/** Sends the stored versions of the accounts a refused request named again: servers may have deleted them. */
async function restoreNamed(deps: DeleteDeps, token: string, refused: string, log: Logger): Promise<void> {
  for (const id of peek(token).accounts) {
    const change = await deps.store.restore(id)
    if (change === undefined) continue
    log.info({ account: id, seq: change.seq, refused }, 're-sending an account a refused delete named')
    deps.delivery.accepted(change)
  }
}

async function restoreAfterRefusal(deps: DeleteDeps, err: AppError, token: string, log: Logger): Promise<void> {
  if (SERVERS_MAY_HAVE_DELETED.has(err.code)) await restoreNamed(deps, token, err.code, log)
}

/**
 * With deletes disabled every request is refused, but servers still act on one they find valid (cache
 * servers always delete, protocol.md §3.4): the signer's view decides whether the accounts go out again.
 * Untrusted, malformed and system-account requests are refused by the servers too.
 */
async function refuseWhileDisabled(deps: DeleteDeps, token: string, log: Logger): Promise<never> {
  const refusal = errors.deleteDisabled()
  const serversActed = await validateDelete(deps.nc, token).then(
    () => true,
    (e: unknown) => !(e instanceof AppError) || SERVERS_MAY_HAVE_DELETED.has(e.code) || e.code === 'VALIDATION_UNAVAILABLE',
  )
  if (serversActed) await restoreNamed(deps, token, refusal.code, log)
  throw refusal
}

/**
 * `$SYS.REQ.CLAIMS.DELETE` (nsc push --prune, --account-removal): the operator-signed request is verified
 * by the signer (trust, freshness, not the system account), checked against the replay memory, and the
 * accounts are tombstoned; servers are then told through the notifier so the accounts' users are cut off.
 */
export function addDeleteEndpoint(service: MeshService, deps: DeleteDeps): void {
  for (const [name, subject, description] of [
    ['claims-delete', subjects.claimsDelete, 'Deletes accounts on an operator-signed request: tombstoned, never served again'],
    // `mesh delete`: servers do not hear this subject, so they act only once we accepted (after a purge).
    ['mesh-delete', subjects.resolverDelete, 'The same delete, on a subject nats-servers do not hear'],
  ] as const) {
    service.endpoint({
      name,
      subject,
      description,
      handle: (msg, log) =>
        applyDelete(deps, msg, log).catch(async (e: unknown) => {
          // Only servers that heard the request may have acted on it.
          if (e instanceof AppError && subject === subjects.claimsDelete) await restoreAfterRefusal(deps, e, msg.string(), log)
          throw e
        }),
      errorReply: (err, msg) => deps.replies.error(`delete accounts request by ${peek(msg.string()).issuer} failed`, err),
    })
  }
}
