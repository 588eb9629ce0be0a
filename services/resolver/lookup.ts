import { isAccountKey, isExpired, subjects, type MeshService } from '../../shared/index.ts'
import type { AccountStore, StoredAccount } from './account-store.ts'

const NOT_FOUND = new Uint8Array()

// The endpoint subscribes to `$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP`: every subject it receives has exactly this
// prefix and suffix around one token, so slicing finds the id without splitting the subject.
const [PREFIX, SUFFIX] = subjects.lookup().split('*') as [string, string]

const served = (acc: StoredAccount | undefined) => (acc === undefined || isExpired(acc) ? NOT_FOUND : acc.jwt)

/**
 * `$SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP`: the raw JWT, or an empty payload so the server refuses the client at
 * once instead of after its fetch timeout. Never headers, never JSON: servers store what we send as the JWT
 * (protocol.md §3.1). An expired JWT is not served, since a server would only refuse it after storing it.
 *
 * Answered synchronously, so the replies to a burst of requests leave in one socket write: an account in
 * the store's memory needs no nkey check (only stored accounts get there); any other id is checked before
 * the store reads it from LevelDB (see AccountStore.readNow).
 */
export function addLookupEndpoint(service: MeshService, store: AccountStore): void {
  service.endpoint({
    name: 'lookup',
    subject: subjects.lookup(),
    description: 'Serves an account JWT to nats-servers; empty when unknown',
    errorReply: () => NOT_FOUND,
    handle(msg) {
      const id = msg.subject.slice(PREFIX.length, msg.subject.length - SUFFIX.length)
      const hit = store.cached(id)
      if (hit !== undefined) return served(hit)
      if (!isAccountKey(id)) return NOT_FOUND
      return served(store.readNow(id))
    },
  })
}
