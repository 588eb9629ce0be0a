import { createInbox, type NatsConnection } from '@nats-io/nats-core'
import { subjects, type Change, type ServerOutcome } from '../../shared/index.ts'
import { isServerId, type ServerDirectory } from './server-directory.ts'

const REPLY_WAIT_MS = 1000

interface ServerReply {
  server?: { id?: unknown; name?: unknown }
  data?: { message?: unknown }
  error?: { description?: unknown }
}

/** Reads a server's claim-update reply (protocol.md §3.2): "... skipped" is a 200 that stored nothing. */
function outcomeOf(r: ServerReply): Pick<ServerOutcome, 'outcome' | 'message'> {
  if (r.error !== undefined) return { outcome: 'refused', message: String(r.error.description ?? '') }
  const message = String(r.data?.message ?? '')
  return { outcome: /skipped/.test(message) ? 'skipped' : 'applied', message }
}

/**
 * Sends a change to every server and gathers what each did. The JWT goes out bare, with no headers, which
 * server handlers would read as part of the token (protocol.md §9.6), once, on the legacy subject
 * `$SYS.ACCOUNT.<id>.CLAIMS.UPDATE`: every resolver type (full, cache, URL/MEM) handles it and replies when
 * given a reply subject (protocol.md §2, §9.12), and our resolver does not listen there. Publishing on the
 * per-account subject as well made every server decode and verify each change twice and the resolver
 * answer its own change.
 */
export async function broadcast(nc: NatsConnection, directory: ServerDirectory, change: Change): Promise<ServerOutcome[]> {
  const known = await directory.current()
  const inbox = createInbox()
  const sub = nc.subscribe(inbox)
  const timer = setTimeout(() => sub.unsubscribe(), REPLY_WAIT_MS)
  const subject = change.kind === 'deleted' ? subjects.claimsDelete : subjects.legacyAccountUpdate(change.id)
  nc.publish(subject, change.jwt, { reply: inbox })

  const outcomes = new Map<string, ServerOutcome>()
  for await (const m of sub) {
    let r: ServerReply
    try {
      r = m.json<ServerReply>()
    } catch {
      continue // not a claim-update reply
    }
    const id = r.server?.id
    if (!isServerId(id)) continue // our resolver answers DELETE broadcasts too: it is not a server
    const name = String(r.server?.name ?? '')
    directory.learn({ id, name })
    outcomes.set(id, { id, name, ...outcomeOf(r) })
    if (known.every((s) => outcomes.has(s.id))) break
  }
  clearTimeout(timer)
  sub.unsubscribe()
  for (const s of known) {
    if (!outcomes.has(s.id)) outcomes.set(s.id, { id: s.id, name: s.name, outcome: 'no-reply', message: '' })
  }
  return [...outcomes.values()]
}
