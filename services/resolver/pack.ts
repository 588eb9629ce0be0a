import {
  errors,
  isExpired,
  nowSeconds,
  packLine,
  PACK_QUEUE,
  peekClaims,
  subjects,
  type MeshService,
  type NatsConnection,
} from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'
import type { ClaimReplies } from './claim-reply.ts'
import { STORE_HASH_BYTES } from './store/store-hash.ts'

const END = new Uint8Array()
// Let the connection's buffer drain now and then, so a large store does not pile up in memory.
const FLUSH_EVERY = 1000

/**
 * `$SYS.REQ.CLAIMS.PACK` (nsc pull, and the periodic sync of full-mode servers; protocol.md §3.5): one empty
 * message when the requester's store hash equals ours, else one `<id>|<jwt>` message per unexpired account and
 * then an empty one. The queue group is nats-server's `responder`, so each request gets one stream only.
 */
export function addPackEndpoint(service: MeshService, nc: NatsConnection, store: AccountStore, replies: ClaimReplies): void {
  service.endpoint({
    name: 'claims-pack',
    subject: subjects.claimsPack,
    queue: PACK_QUEUE,
    description: 'Streams every stored account as <id>|<jwt>, then an empty message; empty at once when hashes match',
    errorReply: (err) => replies.error('pack request failed', err),
    async handle(msg, log) {
      if (msg.data.length !== 0 && msg.data.length !== STORE_HASH_BYTES) {
        throw errors.requestInvalid(`body must be empty or a ${STORE_HASH_BYTES}-byte store hash, got ${msg.data.length} bytes`)
      }
      if (msg.data.length === STORE_HASH_BYTES && store.storeHash().equals(msg.data)) return END
      if (!msg.reply) return undefined
      const now = nowSeconds()
      let sent = 0
      for await (const [id, jwt] of store.entries()) {
        if (isExpired(peekClaims(jwt), now)) continue
        try {
          msg.respond(packLine(id, jwt))
        } catch (err) {
          // only a JWT near 1 MiB plus its id can outgrow the server's max_payload; the rest still goes out
          log.warn({ account: id, err: { message: (err as Error).message } }, 'account too large to pack')
          continue
        }
        if (++sent % FLUSH_EVERY === 0) await nc.flush()
      }
      log.debug({ sent }, 'pack streamed')
      return END
    },
  })
}
