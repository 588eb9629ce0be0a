import { createInbox, type NatsConnection } from '@nats-io/nats-core'
import { subjects, type Logger } from '../../shared/index.ts'

export interface KnownServer {
  id: string
  name: string
}

/** nats-server ids are public server nkeys; our resolver's replies carry a service id and never match. */
export const isServerId = (id: unknown): id is string => typeof id === 'string' && /^N[A-Z2-7]{55}$/.test(id)

const PING_WAIT_MS = 1000
const FRESH_MS = 10_000

/**
 * Which nats-servers share our system account, learnt from `$SYS.REQ.SERVER.PING` (protocol.md §8): every
 * server answers, and the first answer says how many there are, so we stop waiting once all have.
 */
export class ServerDirectory {
  private servers = new Map<string, KnownServer>()
  private refreshedAt = 0
  private refreshing: Promise<void> | undefined

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {
    void this.forgetOnReconnect()
  }

  /**
   * A reconnect usually means a server went away (restarted, or we moved to another): the list is stale, and
   * every broadcast would wait out its reply window for a server that no longer exists. Ping again first.
   */
  private async forgetOnReconnect(): Promise<void> {
    for await (const s of this.nc.status()) if (s.type === 'reconnect') this.refreshedAt = 0
  }

  /** The known servers, refreshed first when the list is older than a few seconds. */
  async current(): Promise<KnownServer[]> {
    if (Date.now() - this.refreshedAt > FRESH_MS) await this.refresh()
    return [...this.servers.values()]
  }

  /** Remembers a server that answered a broadcast but was missing from the last ping. */
  learn(server: KnownServer): void {
    this.servers.set(server.id, server)
  }

  refresh(): Promise<void> {
    return (this.refreshing ??= this.ping().finally(() => (this.refreshing = undefined)))
  }

  private async ping(): Promise<void> {
    const inbox = createInbox()
    const found = new Map<string, KnownServer>()
    let expected = Number.POSITIVE_INFINITY
    const sub = this.nc.subscribe(inbox)
    const timer = setTimeout(() => sub.unsubscribe(), PING_WAIT_MS)
    this.nc.publish(subjects.serverPing, '', { reply: inbox })
    for await (const m of sub) {
      try {
        const r = m.json<{ server?: { id?: unknown; name?: unknown }; statsz?: { active_servers?: unknown } }>()
        if (isServerId(r.server?.id)) found.set(r.server.id, { id: r.server.id, name: String(r.server.name ?? '') })
        if (expected === Number.POSITIVE_INFINITY && typeof r.statsz?.active_servers === 'number') expected = r.statsz.active_servers
      } catch {
        // not a server's statsz reply: nothing to learn from it
      }
      if (found.size >= expected) break
    }
    clearTimeout(timer)
    sub.unsubscribe()
    this.servers = found
    this.refreshedAt = Date.now()
    this.log.debug({ servers: [...found.values()].map((s) => s.name) }, 'servers refreshed')
  }
}
