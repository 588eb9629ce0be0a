import { createInbox, type Msg, type NatsConnection } from '@nats-io/nats-core'
import { subjects, type Change, type ServerOutcome } from '../../shared/index.ts'
import type { KnownServer, ServerDirectory } from './server-directory.ts'
import { serverAnswerOf } from './server-reply.ts'

const REPLY_WAIT_MS = 1000

/** One broadcast waiting for its replies. */
interface Waiting {
  known: KnownServer[]
  outcomes: Map<string, ServerOutcome>
  finish: () => void
}

/**
 * Sends changes to every server and gathers what each did. The JWT goes out bare, with no headers, which
 * server handlers would read as part of the token (protocol.md §9.6), once, on
 * `$SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE` with a reply subject. Every resolver type of every server from 2.9 on
 * handles it (protocol.md §3.2), so the legacy `$SYS.ACCOUNT.<id>.CLAIMS.UPDATE` would only make every server
 * verify the JWT a second time. Our resolver hears it too and recognises it as its own delivery (echoes.ts):
 * no reply, and the notifier counts only servers' replies anyway.
 *
 * Replies come to one subscription for the notifier's life, `<inbox>.<n>` per broadcast, like nats.js's
 * request mux: a subscription per broadcast costs a SUB and an UNSUB that every server in the cluster
 * processes and passes on to its routes, for every change.
 */
export class Broadcaster {
  /** Where the servers answer our broadcasts: `<prefix>.<n>`. */
  readonly prefix = createInbox()
  private readonly waiting = new Map<string, Waiting>()
  private next = 0

  constructor(
    private readonly nc: NatsConnection,
    private readonly directory: ServerDirectory,
  ) {
    nc.subscribe(`${this.prefix}.*`, {
      callback: (err, m) => {
        if (err === null) this.collect(m)
      },
    })
  }

  async send(change: Change): Promise<ServerOutcome[]> {
    const known = await this.directory.current()
    const token = String(++this.next)
    const outcomes = new Map<string, ServerOutcome>()
    await new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer)
        this.waiting.delete(token)
        resolve()
      }
      const timer = setTimeout(finish, REPLY_WAIT_MS)
      this.waiting.set(token, { known, outcomes, finish })
      const subject = change.kind === 'deleted' ? subjects.claimsDelete : subjects.accountUpdate(change.id)
      this.nc.publish(subject, change.jwt, { reply: `${this.prefix}.${token}` })
    })
    for (const s of known) {
      if (!outcomes.has(s.id)) outcomes.set(s.id, { id: s.id, name: s.name, outcome: 'no-reply', message: '' })
    }
    return [...outcomes.values()]
  }

  private collect(m: Msg): void {
    const w = this.waiting.get(m.subject.slice(this.prefix.length + 1))
    if (w === undefined) return // after its reply window
    // our resolver answers on these subjects too: it is not a server
    const answer = serverAnswerOf(m)
    if (answer === undefined) return
    const { id, name, outcome, message } = answer
    this.directory.learn({ id, name })
    w.outcomes.set(id, { id, name, outcome, message })
    if (w.known.every((s) => w.outcomes.has(s.id))) w.finish()
  }
}
