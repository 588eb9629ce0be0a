import { accountOfRequestSubject, isAccountKey, isExpired, subjects, type MeshService } from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'

const NOT_FOUND = new Uint8Array()

/**
 * `$SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP`: the raw JWT, or an empty payload so the server refuses the client at
 * once instead of after its fetch timeout. Never headers, never JSON: servers store what we send as the JWT
 * (protocol.md §3.1). An expired JWT is not served, since a server would only refuse it after storing it.
 */
export function addLookupEndpoint(service: MeshService, store: AccountStore): void {
  service.endpoint({
    name: 'lookup',
    subject: subjects.lookup(),
    description: 'Serves an account JWT to nats-servers; empty when unknown',
    errorReply: () => NOT_FOUND,
    async handle(msg) {
      const id = accountOfRequestSubject(msg.subject)
      if (!isAccountKey(id)) return NOT_FOUND
      const acc = await store.get(id)
      return acc === undefined || isExpired(acc) ? NOT_FOUND : acc.jwt
    },
  })
}
