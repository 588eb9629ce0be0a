import { gatherJson, isAccountKey, isServerId, subjects, tryPeek, type NatsConnection } from '../../shared/index.ts'
import type { HeldOnServer } from './reconcile-rule.ts'

/** A nats-server sharing the system account. */
export interface ServerRef {
  id: string
  name: string
}

/** Which accounts a server has loaded (ACCOUNTZ) and which it has a file for (CLAIMS.LIST). */
export interface Inventory {
  server: ServerRef
  loaded: Set<string>
  files: Set<string>
}

interface ServerReply {
  server?: { id?: unknown; name?: unknown }
  statsz?: { active_servers?: unknown }
  data?: {
    accounts?: unknown
    account_detail?: { jwt?: unknown; expired?: unknown }
  } & unknown
}

/**
 * Reads what the nats-servers hold, read-only: who they are (`SERVER.PING`), what each has loaded
 * (`SERVER.PING.ACCOUNTZ` with `{}` lists, with `{"account":id}` shows one) and which files each keeps
 * (`CLAIMS.LIST`, which lists a cache server's jwt dir). Every request fans out to all servers; replies come
 * to the connection's shared reply subscription, so thousands of accounts cost no SUB/UNSUB each.
 */
export class ServerSurvey {
  constructor(
    private readonly nc: NatsConnection,
    private readonly replyWaitMs = 1000,
  ) {}

  /** Every server answering `SERVER.PING`; the first reply says how many to wait for. */
  async servers(): Promise<ServerRef[]> {
    const out = new Map<string, ServerRef>()
    // The first reply says how many servers there are (statsz.active_servers).
    const all = (got: ServerReply[]) => got.length >= (Number(got[0]?.statsz?.active_servers) || Number.POSITIVE_INFINITY)
    for (const r of await this.ask(subjects.serverPing, '', all)) {
      if (isServerId(r.server?.id)) out.set(r.server.id, { id: r.server.id, name: String(r.server.name ?? '') })
    }
    return [...out.values()].sort((a, b) => a.name.localeCompare(b.name))
  }

  /** What each server has loaded and keeps on disk. A server that does not answer has an empty inventory. */
  async inventories(servers: ServerRef[]): Promise<Inventory[]> {
    const [accountz, lists] = await Promise.all([
      this.ask(subjects.accountz, '{}', everyOne(servers)),
      // Resolver instances answer LIST too; their replies carry no server id and are left out.
      this.ask(subjects.claimsList, '', everyOne(servers)),
    ])
    const ids = (v: unknown) => new Set(Array.isArray(v) ? v.filter(isAccountKey) : [])
    const byId = (replies: ServerReply[], pick: (r: ServerReply) => unknown) =>
      new Map(replies.filter((r) => isServerId(r.server?.id)).map((r) => [r.server!.id as string, ids(pick(r))]))
    const loaded = byId(accountz, (r) => r.data?.accounts)
    // LIST's `data` is the id array itself (protocol.md §3.3).
    const files = byId(lists, (r) => r.data)
    return servers.map((server) => ({ server, loaded: loaded.get(server.id) ?? new Set(), files: files.get(server.id) ?? new Set() }))
  }

  /** What each server holds of `id`: its loaded JWT (ACCOUNTZ) and whether it keeps a file (from `inv`). */
  async held(id: string, inv: Inventory[]): Promise<HeldOnServer[]> {
    const loadedSomewhere = inv.some((i) => i.loaded.has(id))
    const replies = loadedSomewhere ? await this.ask(subjects.accountz, JSON.stringify({ account: id }), everyOne(inv.map((i) => i.server))) : []
    const detail = new Map(replies.filter((r) => isServerId(r.server?.id)).map((r) => [r.server!.id as string, r.data?.account_detail]))
    return inv.map(({ server, files }) => {
      const d = detail.get(server.id)
      const jwt = typeof d?.jwt === 'string' && d.jwt !== '' ? d.jwt : undefined
      return { server: server.name, jwt, iat: jwt === undefined ? undefined : iatOf(jwt), expired: d?.expired === true, file: files.has(id) }
    })
  }

  /** Gathers the servers' replies until `enough` says so or the reply window closes. */
  private ask(subject: string, body: string, enough: (got: ServerReply[]) => boolean): Promise<ServerReply[]> {
    return gatherJson<ServerReply>(this.nc, subject, body, { strategy: 'timer', maxWait: this.replyWaitMs, until: enough })
  }
}

/** Enough once every one of `servers` has replied. */
function everyOne(servers: ServerRef[]): (got: ServerReply[]) => boolean {
  return (got) => {
    const seen = new Set(got.map((r) => r.server?.id))
    return servers.every((s) => seen.has(s.id))
  }
}

/** 0 when unreadable: never newer than what we store. */
const iatOf = (jwt: string): number => Number(tryPeek(jwt)?.iat ?? 0)
