import { gatherJson, isServerId, subjects, type Logger, type NatsConnection } from '../../shared/index.ts'

/** Where broadcast and the disconnect log have always imported it from. */
export { isServerId }

type StatszReply = { server?: { id?: unknown; name?: unknown }; statsz?: { active_servers?: unknown } }

export interface KnownServer {
  id: string
  name: string
}

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
    const found = new Map<string, KnownServer>()
    let expected = Number.POSITIVE_INFINITY
    await gatherJson<StatszReply>(this.nc, subjects.serverPing, '', {
      strategy: 'timer',
      maxWait: PING_WAIT_MS,
      each: (r) => {
        if (isServerId(r.server?.id)) found.set(r.server.id, { id: r.server.id, name: String(r.server.name ?? '') })
        if (expected === Number.POSITIVE_INFINITY && typeof r.statsz?.active_servers === 'number') expected = r.statsz.active_servers
      },
      until: () => found.size >= expected,
    })
    this.servers = found
    this.refreshedAt = Date.now()
    this.log.debug({ servers: [...found.values()].map((s) => s.name) }, 'servers refreshed')
  }
}
