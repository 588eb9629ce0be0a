import type { Msg } from '@nats-io/nats-core'
import type { ServerOutcome } from '../../shared/index.ts'
import { isServerId } from './server-directory.ts'

interface ServerReply {
  server?: { id?: unknown; name?: unknown }
  data?: { account?: unknown; message?: unknown }
  error?: { account?: unknown; description?: unknown }
}

/** A server's claim-update reply (protocol.md §3.2), and the account it names ('' for none). */
export interface ServerAnswer extends ServerOutcome {
  account: string
}

/**
 * Reads a server's claim-update reply: "... skipped" is a 200 that stored nothing. Undefined for anything
 * else, our resolver's replies included (its `server.id` is not a server's nkey).
 */
export function serverAnswerOf(m: Msg): ServerAnswer | undefined {
  let r: ServerReply
  try {
    r = m.json<ServerReply>()
  } catch {
    return undefined
  }
  const id = r?.server?.id
  if (!isServerId(id)) return undefined
  const name = String(r.server?.name ?? '')
  if (r.error !== undefined) {
    return { id, name, account: String(r.error.account ?? ''), outcome: 'refused', message: String(r.error.description ?? '') }
  }
  const message = String(r.data?.message ?? '')
  return { id, name, account: String(r.data?.account ?? ''), outcome: /skipped/.test(message) ? 'skipped' : 'applied', message }
}
