import { idInSubject, isAccountKey, isExpired, NO_REPLY, subjects, type MeshService } from '../../shared/index.ts'
import type { ServiceMsg } from '@nats-io/services'
import type { AccountStore, StoredAccount } from './account-store.ts'
import type { PushReceipts } from './push-receipts.ts'
import type { ServerCount } from './server-count.ts'
import type { Servability } from './servable.ts'

const NOT_FOUND = new Uint8Array()

const LOOKUP = subjects.lookup()

/**
 * A "not found" every server takes at once: the requester waits for one reply per server it knows (2.9.17+),
 * so the empty reply goes out that many times (see ServerCount); the last one is the endpoint's own reply.
 */
function notFound(msg: ServiceMsg, servers: ServerCount): Uint8Array {
  for (let n = servers.notFoundReplies(); n > 1; n--) msg.respond(NOT_FOUND)
  return NOT_FOUND
}

const usable = (id: string, acc: StoredAccount, check?: Servability) => (check ? check.servable(id, acc) : !isExpired(acc))

export interface LookupOptions {
  /**
   * RESOLVER_AUTHORITATIVE. False while a fleet moves onto the mesh: full-resolver servers may still hold
   * accounts not yet imported, and our "not found" (first reply wins up to 2.9.16; from 2.9.17 our empty
   * replies use up the count the requester waits for) would refuse their users before a full peer answers.
   * Silent instead, an unknown account costs the requester its fetch timeout at worst.
   */
  authoritative: boolean
  /** Withholds stored JWTs the asking server would refuse (servable.ts); without it, only expired ones. */
  servability?: Servability
  /** Told of every JWT served: a server that loads an account around a push may not hold the pushed token. */
  receipts?: PushReceipts
}

/**
 * `$SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP`: the raw JWT, or an empty payload so the server refuses the client at
 * once instead of after its fetch timeout. Never headers, never JSON: servers store what we send as the JWT
 * (protocol.md §3.1). A JWT the server would refuse after storing it (expired; untrusted, for another id or
 * refused by today's rules: see servable.ts) is not served.
 *
 * Answered synchronously, so the replies to a burst of requests leave in one socket write: an account in
 * the store's memory needs no nkey check (only stored accounts get there); any other id is checked before
 * the store reads it from LevelDB (see AccountStore.readNow). Only a miss in the jetstream engine waits: for
 * the stream's word that no other instance stored it a moment ago (store.recheckMissing).
 */
export function addLookupEndpoint(service: MeshService, store: AccountStore, servers: ServerCount, opts: LookupOptions): void {
  const { servability, receipts } = opts
  const served = (id: string, jwt: string): string => {
    receipts?.servedJwt(id)
    return jwt
  }
  const unknown = (msg: ServiceMsg): Uint8Array | typeof NO_REPLY => (opts.authoritative ? notFound(msg, servers) : NO_REPLY)
  service.endpoint({
    name: 'lookup',
    subject: subjects.lookup(),
    description: opts.authoritative
      ? 'Serves an account JWT to nats-servers; empty when unknown'
      : 'Serves an account JWT to nats-servers; silent when unknown (RESOLVER_AUTHORITATIVE=false)',
    errorReply: () => NOT_FOUND,
    handle(msg) {
      const id = idInSubject(LOOKUP, msg.subject) ?? ''
      const hit = store.cached(id)
      if (hit !== undefined && usable(id, hit, servability)) return served(id, hit.jwt)
      // nats-server fetches only account keys: anything else comes from a client, and one reply does
      if (hit === undefined && !isAccountKey(id)) return NOT_FOUND
      const acc = hit ?? store.readNow(id)
      if (acc === undefined && store.recheckMissing !== undefined) {
        return store.recheckMissing(id).then((found) => (found !== undefined && usable(id, found, servability) ? served(id, found.jwt) : unknown(msg)))
      }
      return acc === undefined || !usable(id, acc, servability) ? unknown(msg) : served(id, acc.jwt)
    },
  })
}
