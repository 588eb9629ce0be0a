import {
  AppError,
  errors,
  isAccountKey,
  subjects,
  validateDelete,
  type Logger,
  type MeshService,
  type NatsConnection,
} from '../../shared/index.ts'
import type { ServiceMsg } from '@nats-io/services'
import type { AccountStore } from './account-store.ts'
import type { ClaimReplies } from './claim-reply.ts'

/**
 * Refusals of a delete request that servers act on anyway: they check neither time nor replay (protocol.md
 * §6), so they may have deleted accounts we keep. Our stored versions go out again to bring them back.
 */
const SERVERS_MAY_HAVE_DELETED = new Set<string>(['JWT_EXPIRED', 'JWT_NOT_YET_VALID', 'REQUEST_STALE', 'REQUEST_REPLAYED'])

interface DeleteDeps {
  nc: NatsConnection
  store: AccountStore
  replies: ClaimReplies
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

async function applyDelete(deps: DeleteDeps, msg: ServiceMsg, log: Logger): Promise<string> {
  if (msg.data.length === 0) throw errors.jwtMalformed('request body is empty')
  const token = msg.string()
  const v = await validateDelete(deps.nc, token)
  const result = await deps.store.remove({
    token,
    accounts: v.accounts,
    iat: v.iat,
    hash: v.hash,
    rememberUntil: v.freshUntil,
    via: msg.subject,
  })
  log.info({ issuer: v.issuer, accounts: result.changes.map((c) => c.id), seqs: result.changes.map((c) => c.seq) }, 'accounts deleted')
  return deps.replies.ok(`deleted ${result.deleted} accounts`)
}

async function restoreAfterRefusal(deps: DeleteDeps, err: AppError, token: string, log: Logger): Promise<void> {
  if (!SERVERS_MAY_HAVE_DELETED.has(err.code)) return
  for (const id of peek(token).accounts) {
    const change = await deps.store.restore(id)
    if (change === undefined) continue
    log.info({ account: id, seq: change.seq, refused: err.code }, 're-sending an account a refused delete named')
  }
}

/**
 * `$SYS.REQ.CLAIMS.DELETE` (nsc push --prune, --account-removal): the operator-signed request is verified
 * by the signer (trust, freshness, not the system account), checked against the replay memory, and the
 * accounts are tombstoned; servers are then told through the notifier so the accounts' users are cut off.
 */
export function addDeleteEndpoint(service: MeshService, deps: DeleteDeps): void {
  service.endpoint({
    name: 'claims-delete',
    subject: subjects.claimsDelete,
    description: 'Deletes accounts on an operator-signed request: tombstoned, never served again',
    handle: (msg, log) =>
      applyDelete(deps, msg, log).catch(async (e: unknown) => {
        if (e instanceof AppError) await restoreAfterRefusal(deps, e, msg.string(), log)
        throw e
      }),
    errorReply: (err, msg) => deps.replies.error(`delete accounts request by ${peek(msg.string()).issuer} failed`, err),
  })
}
