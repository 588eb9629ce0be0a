import { createInbox, headers, type Msg, type Subscription } from '@nats-io/nats-core'
import {
  ChangeHeader,
  changeFrom,
  decodeJwt,
  errors,
  isTrustedIssuer,
  subjects,
  type Logger,
  type MeshService,
  type NatsConnection,
  type TrustAnchor,
} from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'
import { STORE_HASH_BYTES } from './store-hash.ts'
import type { Takeover } from './takeover.ts'

/**
 * How long a replicated delete request stays in the replay memory. The accepting instance knows the signer's
 * exact window; a peer only needs a bound at least as long.
 */
const REPLICA_REPLAY_SECONDS = 3600
/** A peer's sync stream must keep moving: this long without a message ends the pull. */
const SYNC_IDLE_MS = 5000
/** Every instance answers `$SRV.PING` at once; this is long enough on one cluster and short enough for startup. */
const PEER_DISCOVERY_MS = 300
const FLUSH_EVERY = 1000
const END = new Uint8Array()

/**
 * Keeps several resolver instances, each with its own LevelDB, on the same accounts. Every accepted change
 * is published as a change event, which the other instances apply; on start and then periodically each
 * instance compares its PACK store hash with every peer's and, when they differ, pulls the peer's accounts
 * and tombstones. The newest `iat` wins everywhere (see AccountStore.applyReplica), so instances converge
 * whatever order they hear things in.
 */
export class Replication {
  private sub: Subscription | undefined
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined

  constructor(
    private readonly nc: NatsConnection,
    private readonly store: AccountStore,
    private readonly instanceId: string,
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly trust: TrustAnchor | undefined,
    /** Stands by to deliver what peers accepted, should they fall silent. */
    private readonly takeover?: Takeover,
  ) {}

  /** Serves this instance's store to its peers on its own sync subject. */
  addSyncEndpoint(service: MeshService): void {
    service.endpoint({
      name: 'sync',
      subject: subjects.resolverSync(this.instanceId),
      description: "Streams this instance's accounts and tombstones to a peer whose store hash differs",
      handle: async (msg) => {
        if (msg.data.length !== 0 && msg.data.length !== STORE_HASH_BYTES) {
          throw errors.requestInvalid(`body must be empty or a ${STORE_HASH_BYTES}-byte store hash`)
        }
        if (msg.data.length === STORE_HASH_BYTES && this.store.storeHash().equals(msg.data)) return END
        if (!msg.reply) return undefined
        let sent = 0
        const send = (id: string, kind: 'updated' | 'deleted', body: string) => {
          const h = headers()
          h.set(ChangeHeader.account, id)
          h.set(ChangeHeader.kind, kind)
          h.set(ChangeHeader.seq, '0')
          msg.respond(body, { headers: h })
          return ++sent % FLUSH_EVERY === 0 ? this.nc.flush() : undefined
        }
        for await (const [id, jwt] of this.store.entries()) await send(id, 'updated', jwt)
        for await (const t of this.store.tombstoneEntries()) await send(t.id, 'deleted', t.token)
        return END
      },
    })
  }

  /**
   * Applies peers' change events from now on, then reconciles with every peer, now and every interval.
   * Resolves once the first reconcile is over, so an instance started empty does not answer lookups with
   * "unknown" for accounts its peers hold.
   */
  async start(): Promise<void> {
    this.sub = this.nc.subscribe(subjects.resolverChanges(), {
      callback: (err, msg) => {
        if (err !== null) return void this.log.warn({ err: { message: err.message } }, 'change subscription failed')
        if (msg.headers?.get(ChangeHeader.origin) === this.instanceId) return
        // Watched before it is applied: the peer's "delivered" may come back before our write is done.
        const change = changeFrom(msg)
        if (change !== undefined) this.takeover?.watch(change)
        void this.applyChange(msg, 'event').then((applied) => {
          if (!applied && change !== undefined) this.takeover?.forget(change)
        })
      },
    })
    const tick = () =>
      (this.running ??= this.reconcile()
        .then(() => undefined)
        .finally(() => (this.running = undefined)))
    this.timer = setInterval(tick, this.intervalMs)
    this.timer.unref()
    void this.catchUpAfterReconnects(tick)
    await tick()
  }

  /**
   * Change events published while this instance was cut off (its nats-server restarting, as in a rolling
   * switch) never reach it: reconcile as soon as it is back rather than at the next interval, so it does not
   * serve the older versions to lookups meanwhile.
   */
  private async catchUpAfterReconnects(tick: () => Promise<void>): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'reconnect') void tick()
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    this.sub?.unsubscribe()
    await this.running
  }

  /** Pulls from every peer whose store hash differs from ours; returns how many accounts changed here. */
  async reconcile(): Promise<number> {
    let changed = 0
    for (const peer of await this.peers()) {
      try {
        changed += await this.pullFrom(peer)
      } catch (e) {
        this.log.warn({ peer, err: { message: (e as Error).message } }, 'reconcile with peer failed')
      }
    }
    if (changed > 0) this.log.info({ changed }, 'reconciled with peers')
    return changed
  }

  /** The other resolver instances, found the way `nats micro ls` finds them. */
  private async peers(): Promise<string[]> {
    const inbox = createInbox()
    const sub = this.nc.subscribe(inbox)
    const timer = setTimeout(() => sub.unsubscribe(), PEER_DISCOVERY_MS)
    this.nc.publish(subjects.microPing('resolver'), '', { reply: inbox })
    const ids = new Set<string>()
    for await (const m of sub) {
      try {
        const id = (m.json() as { id?: unknown }).id
        if (typeof id === 'string' && id !== this.instanceId && /^[A-Za-z0-9]+$/.test(id)) ids.add(id)
      } catch {
        // not a ping reply
      }
    }
    clearTimeout(timer)
    return [...ids]
  }

  private async pullFrom(peer: string): Promise<number> {
    const inbox = createInbox()
    const sub = this.nc.subscribe(inbox)
    let idle = setTimeout(() => sub.unsubscribe(), SYNC_IDLE_MS)
    this.nc.publish(subjects.resolverSync(peer), this.store.storeHash(), { reply: inbox })
    let changed = 0
    let complete = false
    for await (const m of sub) {
      clearTimeout(idle)
      idle = setTimeout(() => sub.unsubscribe(), SYNC_IDLE_MS)
      if (m.data.length === 0 && m.headers === undefined) {
        complete = true
        break
      }
      if (await this.applyChange(m, peer)) changed++
    }
    clearTimeout(idle)
    sub.unsubscribe()
    if (!complete) throw new Error(`the stream from ${peer} stopped before its end`)
    return changed
  }

  /** Applies one replicated account version or deletion; returns whether the store changed. */
  private async applyChange(msg: Msg, from: string): Promise<boolean> {
    const change = changeFrom(msg)
    if (change === undefined) return false
    try {
      // Any system-account user can publish here: take only what a trusted operator key signed.
      if (this.trust !== undefined) {
        const { claims } = decodeJwt(change.jwt)
        if (!isTrustedIssuer(claims.iss, this.trust)) throw errors.issuerUntrusted(claims.iss)
      }
      if (change.kind === 'deleted') {
        const now = Math.floor(Date.now() / 1000)
        return await this.store.applyReplicaDelete(change.id, change.jwt, now + REPLICA_REPLAY_SECONDS)
      }
      return await this.store.applyReplica(change.id, change.jwt)
    } catch (e) {
      this.log.warn({ account: change.id, from, err: { message: (e as Error).message } }, 'replicated change not applied')
      return false
    }
  }
}
