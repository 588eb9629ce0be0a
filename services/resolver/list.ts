import { subjects, type MeshService } from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'
import type { ClaimReplies } from './claim-reply.ts'

/**
 * `$SYS.REQ.CLAIMS.LIST`: the ids of the stored, unexpired accounts, as nats-server lists them
 * (protocol.md §3.3). `nsc push --prune` deletes every listed id it does not know, so a deleted account must
 * not appear, and `data` is `[]`, never null, when the store is empty.
 */
export function addListEndpoint(service: MeshService, store: AccountStore, replies: ClaimReplies): void {
  service.endpoint({
    name: 'claims-list',
    subject: subjects.claimsList,
    description: 'Lists the ids of the stored, unexpired accounts',
    errorReply: (err) => replies.error('list accounts failed', err),
    handle: async () => replies.data(await store.liveIds()),
  })
}
