import {
  accountOfRequestSubject,
  AppError,
  errors,
  isAccountKey,
  jwtDigest,
  MAX_JWT_BYTES,
  NO_REPLY,
  subjects,
  tryPeek,
  validateAccount,
  type Logger,
  type MeshService,
  type NatsConnection,
} from '../../shared/index.ts'
import type { ServiceMsg } from '@nats-io/services'
import type { AccountStore } from './account-store.ts'
import type { ClaimReplies } from './claim-reply.ts'
import { exportersFor } from './exporters.ts'
import type { PushReceipts } from './push-receipts.ts'

/**
 * Refusals of a validly signed account JWT. Servers hear every push too, store such a JWT on their own and
 * may apply it (protocol.md §3.2, §9.4), so after refusing one we send them our stored version again.
 */
const SERVERS_MAY_HAVE_STORED = new Set<string>([
  'JWT_OUTDATED',
  'ISSUER_UNTRUSTED',
  'JWT_EXPIRED',
  'JWT_NOT_YET_VALID',
  'SELF_SIGNED_REFUSED',
  'POLICY_VIOLATION',
  'ACTIVATION_INVALID',
])

const WHAT = 'jwt update resulted in error'

interface UpdateDeps {
  nc: NatsConnection
  store: AccountStore
  replies: ClaimReplies
  /** Told of pushes no signer could validate, to settle them once one answers. */
  reconciler?: { missed(id: string, jwt: string): void }
  /** Whether `jwt` of `id` is a version this instance is broadcasting now (services/resolver/echoes.ts). */
  echo?: (id: string, jwt: string) => boolean
  /** Pushes whose servers' own replies may stand for our broadcast (level engine). */
  receipts?: PushReceipts
}

/** A push as it entered: the token, read once, and what is read from it without trusting it. */
interface Push {
  token: string
  /** The account the subject names, if it is a per-account subject. */
  subjectAccount: string | undefined
  /** The subject's account, else the JWT's `sub` if it is an account key: only to look up and to name in replies. */
  id: string | undefined
  /** The JWT's `nats` claims, unchecked; undefined when undecodable (the signer says why). */
  nats: unknown
}

/** Reads a push once: the handler, its failure path and its error reply all use this. */
const pushes = new WeakMap<ServiceMsg, Push>()

function pushOf(msg: ServiceMsg): Push {
  let p = pushes.get(msg)
  if (p !== undefined) return p
  const subjectAccount = msg.subject === subjects.claimsUpdate ? undefined : accountOfRequestSubject(msg.subject)
  const token = msg.string()
  // undecodable: the reply names no account ("n/a"), as nats-server's does
  const claims = tryPeek(token)
  const sub = claims?.sub
  p = { token, subjectAccount, id: subjectAccount ?? (isAccountKey(sub) ? sub : undefined), nats: claims?.nats }
  pushes.set(msg, p)
  return p
}

/**
 * The notifier's broadcast of a version this instance is delivering reaches us too (on the per-account
 * subject). It is ours: nothing to check or store, and no reply, since the notifier counts only servers'
 * replies. When a newer version was stored while it was on its way, it is not an outdated push to refuse
 * and restore after either: the newer version is queued behind it for every server. Anyone else sending
 * exactly those bytes then sends servers what they are being sent anyway.
 */
function isEcho(deps: UpdateDeps, msg: ServiceMsg): boolean {
  if (deps.echo === undefined || msg.subject === subjects.claimsUpdate || msg.data.length === 0 || msg.data.length > MAX_JWT_BYTES) return false
  const { subjectAccount, token } = pushOf(msg)
  return subjectAccount !== undefined && deps.echo(subjectAccount, token)
}

async function applyUpdate(deps: UpdateDeps, msg: ServiceMsg, log: Logger): Promise<string> {
  if (msg.data.length === 0) throw errors.jwtMalformed('request body is empty')
  if (msg.data.length > MAX_JWT_BYTES) throw errors.jwtTooLarge(msg.data.length, MAX_JWT_BYTES)
  const { token, subjectAccount, id, nats } = pushOf(msg)
  if (subjectAccount !== undefined && !isAccountKey(subjectAccount)) {
    throw errors.requestInvalid(`${subjectAccount} in the subject is not an account key`)
  }
  if (id !== undefined) deps.receipts?.arrived(id, token, msg.reply)
  const stored = id === undefined ? undefined : await deps.store.get(id)
  // The same token again (a repeated push, or our own broadcast after its echo window): no signer round trip.
  if (stored !== undefined && stored.jwt === token) {
    deps.receipts?.ended(stored.id, token)
    return deps.replies.ok('jwt already current', stored.id)
  }
  const exporters = await exportersFor(deps.store, token, nats, deps.nc)
  const verdict = await validateAccount(deps.nc, token, { account: subjectAccount, storedIat: stored?.iat, exporters })
  const result = await deps.store.save(verdict.id, verdict.jwt ?? token, { via: msg.subject })
  // what servers took from the client is not what we store (re-signed), or nothing changed
  if (result.outcome === 'current' || verdict.jwt !== undefined) deps.receipts?.ended(verdict.id, token)
  if (result.outcome === 'current') {
    log.debug({ account: verdict.id }, 'jwt already current')
    return deps.replies.ok('jwt already current', verdict.id)
  }
  // the store marks a change that revokes users or lowers the connection limit (the notifier watches it), and
  // the reply tells `mesh push` which report to wait for (nsc and natscli ignore the extra field)
  const enforce = result.change.enforce === true
  const resigned = verdict.jwt !== undefined
  log.info({ account: verdict.id, seq: result.change.seq, kind: result.change.kind, resigned, enforce }, 'jwt stored')
  const message = resigned ? 'jwt updated (signed by the operator)' : 'jwt updated'
  if (!enforce) return deps.replies.ok(message, verdict.id)
  return deps.replies.data({ account: verdict.id, code: 200, message, enforcing: jwtDigest(result.change.jwt) })
}

/**
 * Sends our stored version again after refusing a JWT the servers may have taken (see the set above); for a
 * deleted account, its deletion again: cache servers write even a deleted account's old JWT to their jwt dir
 * and serve it after a restart. A push no signer could check goes to the reconciler to be settled later.
 */
async function restoreAfterRefusal(deps: UpdateDeps, err: AppError, id: string | undefined, token: string, log: Logger): Promise<void> {
  if (id === undefined) return
  if (err.code === 'VALIDATION_UNAVAILABLE') return deps.reconciler?.missed(id, token)
  if (!SERVERS_MAY_HAVE_STORED.has(err.code)) return
  const restored = await deps.store.restore(id)
  const change = restored ?? (await deps.store.restoreDeletion(id))
  if (change !== undefined) {
    const what = change.kind === 'deleted' ? 're-sending the stored deletion' : 're-sending the stored version'
    log.info({ account: id, seq: change.seq, refused: err.code }, what)
  }
}

/**
 * `$SYS.REQ.CLAIMS.UPDATE` (nsc push) and `$SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE` (nats auth account push):
 * validated by the signer, stored durably and in `iat` order, then handed to the notifier. Every outcome is
 * answered in nats-server's JSON; a success reply is sent only once the JWT is on disk.
 */
export function addUpdateEndpoints(service: MeshService, deps: UpdateDeps): void {
  for (const [name, subject, description] of [
    ['claims-update', subjects.claimsUpdate, 'Accepts an account JWT pushed by nsc (account from the JWT)'],
    ['account-update', subjects.accountUpdate(), 'Accepts an account JWT for the account named in the subject'],
  ] as const) {
    service.endpoint({
      name,
      subject,
      description,
      handle: (msg, log) =>
        isEcho(deps, msg) ? NO_REPLY : applyUpdate(deps, msg, log).catch(async (e: unknown) => {
          if (!(e instanceof AppError)) throw e
          const { id, token } = pushOf(msg)
          if (id !== undefined) deps.receipts?.ended(id, token)
          await restoreAfterRefusal(deps, e, isAccountKey(id) ? id : undefined, token, log)
          throw e
        }),
      errorReply: (err, msg) => deps.replies.error(WHAT, err, pushOf(msg).id ?? 'n/a'),
    })
  }
}
