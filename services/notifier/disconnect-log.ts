import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core'
import { subjects } from '../../shared/index.ts'
import { isServerId } from './server-directory.ts'

/** How long a forced disconnect is remembered: longer than a push takes from client to notifier. */
const KEEP_MS = 30_000
/** Bounds memory whatever the servers send: a flood of events only evicts the oldest. */
const MAX_EVENTS = 20_000

/** Server-side reasons for closing a client that an account change causes (nats-server's ClosedState names). */
const FORCED = /revoked|maximum account connections|authorization violation|account.*(expired|deleted)/i

/** One connection a server closed on its own account of the account's JWT. */
export interface ForcedDisconnect {
  at: number
  server: string
  account: string
  user: string
  jwt?: string
  reason: string
}

interface DisconnectEvent {
  server?: { id?: unknown }
  client?: { acc?: unknown; user?: unknown; jwt?: unknown }
  reason?: unknown
}

/**
 * The servers' recent forced disconnects, for every account. It must listen all the time, not from the
 * broadcast on: servers hear the client's own push (`nsc push`, `mesh push` on `$SYS.REQ.CLAIMS.UPDATE`) and
 * cut revoked users off before the resolver has even accepted the change. Clients leaving on their own are
 * not kept.
 */
export class DisconnectLog {
  private events: ForcedDisconnect[] = []
  private readonly sub: Subscription

  constructor(nc: NatsConnection) {
    this.sub = nc.subscribe(subjects.accountDisconnect(), {
      callback: (err, m) => {
        if (err === null) this.record(m)
      },
    })
  }

  private record(m: Msg): void {
    let e: DisconnectEvent
    try {
      e = m.json<DisconnectEvent>()
    } catch {
      return // not a server's event
    }
    const reason = typeof e.reason === 'string' ? e.reason : ''
    const { acc, user, jwt } = e.client ?? {}
    if (!FORCED.test(reason) || !isServerId(e.server?.id) || typeof acc !== 'string' || typeof user !== 'string') return
    const at = Date.now()
    if (this.events.length >= MAX_EVENTS || (this.events[0] !== undefined && at - this.events[0].at > KEEP_MS)) this.prune(at)
    this.events.push({
      at,
      server: e.server.id,
      account: acc,
      user,
      reason,
      ...(typeof jwt === 'string' ? { jwt } : {}),
    })
  }

  private prune(now: number): void {
    const keep = this.events.filter((e) => now - e.at <= KEEP_MS)
    this.events = keep.length >= MAX_EVENTS ? keep.slice(keep.length - MAX_EVENTS / 2) : keep
  }

  /**
   * Takes the account's forced disconnects heard at or after `since` (ms) that `mine` accepts: each is
   * reported once, so a second revocation soon after the first does not count the first one's users again.
   */
  take(account: string, since: number, mine: (e: ForcedDisconnect) => boolean): ForcedDisconnect[] {
    const taken: ForcedDisconnect[] = []
    this.events = this.events.filter((e) => {
      const hit = e.account === account && e.at >= since && mine(e)
      if (hit) taken.push(e)
      return !hit
    })
    return taken
  }

  close(): void {
    this.sub.unsubscribe()
  }
}
