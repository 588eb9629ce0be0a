import { createHash } from 'node:crypto'
import {
  AppError,
  errors,
  isAccountKey,
  subjects,
  tryPeek,
  validateDelete,
  type DeleteVerdict,
  type Logger,
  type MeshService,
  type NatsConnection,
} from '../../shared/index.ts'
import type { ServiceMsg } from '@nats-io/services'
import type { AccountStore } from './account-store.ts'
import type { ClaimReplies } from './claim-reply.ts'
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
  const c = tryPeek<{ accounts?: unknown }>(token)
  const accounts = Array.isArray(c?.nats?.accounts) ? c.nats.accounts.filter(isAccountKey) : []
  return { issuer: typeof c?.sub === 'string' ? c.sub.slice(0, 64) : 'n/a', accounts }
}

/**
 * Whether `token` is a delete we accepted whose accounts are all still deleted by it: then hearing it again
 * (the notifier re-broadcasts each accepted delete to the servers, on a subject we answer too, possibly long
 * after when a notifier was down) is an idempotent success, checked before the signer's freshness window.
 * Our tombstones record the sha256 of the request that made them, so a match proves it is byte for byte one
 * we validated. Once an account was re-created, or deleted again by another request, it is a replay.
 */
async function alreadyApplied(store: AccountStore, token: string): Promise<boolean> {
  const hash = createHash('sha256').update(token).digest('hex')
  let recorded = false
  for (const id of new Set(peek(token).accounts)) {
    if ((await store.get(id)) !== undefined) return false
    const tomb = await store.tombstoneOf(id)
    if (tomb === undefined) continue // never stored: nats-server counts it as deleted too
    if (tomb.request !== hash) return false
    recorded = true
  }
  return recorded
}

/** The same for a remembered request that named only accounts we never stored (no tombstone records it). */
async function noneStored(store: AccountStore, v: DeleteVerdict): Promise<boolean> {
  for (const id of v.accounts) if ((await store.get(id)) !== undefined || (await store.tombstoneOf(id)) !== undefined) return false
  return true
}

async function applyDelete(deps: DeleteDeps, msg: ServiceMsg, log: Logger): Promise<string> {
  if (msg.data.length === 0) throw errors.jwtMalformed('request body is empty')
  const token = msg.string()
  if (!deps.allowDelete) return refuseWhileDisabled(deps, token, log)
  if (await alreadyApplied(deps.store, token)) {
    log.debug({ accounts: peek(token).accounts }, 'delete request heard again (our own re-broadcast): already applied')
    return deps.replies.ok(`deleted ${new Set(peek(token).accounts).size} accounts`)
  }
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
    if (!(e instanceof AppError && e.code === 'REQUEST_REPLAYED' && (await noneStored(deps.store, v)))) throw e
    log.debug({ issuer: v.issuer, accounts: v.accounts }, 'delete request heard again: it named only accounts never stored')
    return deps.replies.ok(`deleted ${v.accounts.length} accounts`)
  }
  log.info({ issuer: v.issuer, accounts: result.changes.map((c) => c.id), seqs: result.changes.map((c) => c.seq) }, 'accounts deleted')
  return deps.replies.ok(`deleted ${result.deleted} accounts`)
}

/** Sends the stored versions of the accounts a refused request named again: servers may have deleted them. */
async function restoreNamed(deps: DeleteDeps, token: string, refused: string, log: Logger): Promise<void> {
  for (const id of peek(token).accounts) {
    const change = await deps.store.restore(id)
    if (change === undefined) continue
    log.info({ account: id, seq: change.seq, refused }, 're-sending an account a refused delete named')
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
