import { isAccountKey, isExpired, subjects, type MeshService } from '../../shared/index.ts'
import type { AccountStore, StoredAccount } from './account-store.ts'
import type { Servability } from './servable.ts'

const NOT_FOUND = new Uint8Array()

// The endpoint subscribes to `$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP`: every subject it receives has exactly this
// prefix and suffix around one token, so slicing finds the id without splitting the subject.
const [PREFIX, SUFFIX] = subjects.lookup().split('*') as [string, string]

const usable = (id: string, acc: StoredAccount, check?: Servability) => (check ? check.servable(id, acc) : !isExpired(acc))

/**
 * `$SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP`: the raw JWT, or an empty payload so the server refuses the client at
 * once instead of after its fetch timeout. Never headers, never JSON: servers store what we send as the JWT
 * (protocol.md §3.1). A JWT the server would refuse after storing it (expired; untrusted, for another id or
 * refused by today's rules: see servable.ts) is not served.
 *
 * Answered synchronously, so the replies to a burst of requests leave in one socket write: an account in
 * the store's memory needs no nkey check (only stored accounts get there); any other id is checked before
 * the store reads it from LevelDB (see AccountStore.readNow).
 */
export function addLookupEndpoint(service: MeshService, store: AccountStore, servability?: Servability): void {
  const served = (id: string, acc: StoredAccount | undefined) => (acc !== undefined && usable(id, acc, servability) ? acc.jwt : NOT_FOUND)
  service.endpoint({
    name: 'lookup',
    subject: subjects.lookup(),
    description: 'Serves an account JWT to nats-servers; empty when unknown',
    errorReply: () => NOT_FOUND,
    handle(msg) {
      const id = msg.subject.slice(PREFIX.length, msg.subject.length - SUFFIX.length)
      const hit = store.cached(id)
      if (hit !== undefined) return served(id, hit)
      if (!isAccountKey(id)) return NOT_FOUND
      return served(id, store.readNow(id))
    },
  })
}
