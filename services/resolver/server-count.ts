import type { Msg, Subscription } from '@nats-io/nats-core'
import { gather, isServerId, subjects, type Logger, type NatsConnection } from '../../shared/index.ts'

/** How often to ask every server for its statistics again (their own heartbeats come in between). */
const PING_EVERY_MS = 30_000
/** How long each ping gathers replies; a server slower than this is learnt from its heartbeat. */
const PING_WAIT_MS = 2000
/** A server not heard from for this long has gone: longer than two pings and any server's heartbeat. */
const FORGET_AFTER_MS = 90_000

/**
 * The most replies one "not found" sends. Statistics come from anyone allowed to publish in the system
 * account; a forged `active_servers` of a billion must not turn each unknown lookup into a flood.
 */
const MAX_REPLIES = 256

interface Heard {
  at: number
  /** The servers it counts in the system account, itself included (`statsz.active_servers`). */
  activeServers: number
}

/**
 * How many empty LOOKUP replies make a "not found" final on every nats-server (protocol.md §3.1).
 *
 * From 2.9.17 a server that fetches an account expects one reply per remote server it knows (the servers
 * whose `$SYS.SERVER.<id>.STATSZ` it has heard: its `active_servers` minus itself), skips empty replies until
 * that many have arrived and takes the first non-empty one. Cache servers never answer LOOKUP, so on a
 * cluster our single empty reply leaves the requester waiting its whole fetch timeout. Sending as many empty
 * replies as the widest server expects ends the wait at once; extra ones are dropped, since the requester
 * stops listening at the first final answer, and up to 2.9.16 the first reply wins anyway.
 *
 * Learnt passively from the servers' statistics heartbeats and actively by `$SYS.REQ.SERVER.PING`, whose
 * replies carry the same statistics; both arrive off the lookup path, which only reads the result.
 */
export class ServerCount {
  private readonly heard = new Map<string, Heard>()
  private sub: Subscription | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(subjects.serverStatsz(), {
      callback: (err, m) => {
        if (err === null) this.learn(m)
      },
    })
    this.ping()
    this.timer = setInterval(() => this.ping(), PING_EVERY_MS)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.sub?.unsubscribe()
    this.sub = undefined
  }

  /** The empty replies a "not found" needs: at least one, and one per remote server any requester may count. */
  notFoundReplies(): number {
    const now = Date.now()
    let servers = 0
    let widest = 0
    for (const [id, h] of this.heard) {
      if (now - h.at > FORGET_AFTER_MS) {
        this.heard.delete(id)
        continue
      }
      servers++
      widest = Math.max(widest, h.activeServers)
    }
    return Math.min(MAX_REPLIES, Math.max(1, servers - 1, widest - 1))
  }

  /** Each reply is learnt as it arrives: the first lookups after start need the count at once. */
  private ping(): void {
    gather(this.nc, subjects.serverPing, '', { strategy: 'timer', maxWait: PING_WAIT_MS, each: (m) => this.learn(m) }).catch((err: unknown) => {
      // closed or draining: the count keeps its last value, and stop() ends the timer
      this.log.debug({ err }, 'server ping not sent')
    })
  }

  private learn(m: Msg): void {
    let r: { server?: { id?: unknown }; statsz?: { active_servers?: unknown } }
    try {
      r = m.json()
    } catch {
      return // not a server's statistics: nothing to learn
    }
    const id = r.server?.id
    if (!isServerId(id)) return
    const active = r.statsz?.active_servers
    const fresh = !this.heard.has(id)
    this.heard.set(id, { at: Date.now(), activeServers: typeof active === 'number' && Number.isSafeInteger(active) ? active : 0 })
    if (fresh) this.log.debug({ server: id, notFoundReplies: this.notFoundReplies() }, 'nats-server heard')
  }
}
