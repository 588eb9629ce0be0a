import { createHash } from 'node:crypto'
import type { Subscription } from '@nats-io/nats-core'
import { requestDelivery, subjects, type Change, type Logger, type NatsConnection } from '../../shared/index.ts'

const SCAN_MS = 1000

export const deliveredDigest = (jwt: string) => createHash('sha256').update(jwt).digest('hex')

/**
 * Delivers the changes a peer accepted if that peer falls silent. The instance that accepts a change
 * delivers it from its durable outbox and then announces it on `mesh.resolver.delivered.<id>`; the other
 * instances keep each change they applied from its event until that announcement, and deliver it themselves
 * once it is `delayMs` overdue, so an instance lost for good between its reply and its delivery leaves no
 * server on an old version. A second delivery is harmless: servers apply the same JWT again.
 */
export class Takeover {
  private readonly watched = new Map<string, { change: Change; digest: string; due: number }>()
  private readonly sending = new Set<string>()
  private sub: Subscription | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly delayMs: number,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(subjects.resolverDelivered(), {
      callback: (err, msg) => {
        if (err !== null) return
        const id = msg.subject.slice(subjects.resolverDelivered('').length)
        if (this.watched.get(id)?.digest === msg.string()) this.watched.delete(id)
      },
    })
    this.timer = setInterval(() => this.scan(), SCAN_MS)
    this.timer.unref()
  }

  /** Keeps a change a peer accepted until the peer says it delivered it. */
  watch(change: Change): void {
    this.watched.set(change.id, { change, digest: deliveredDigest(change.jwt), due: Date.now() + this.delayMs })
  }

  /** Drops `change` if it is still the one watched for its account (it was not applied here after all). */
  forget(change: Change): void {
    if (this.watched.get(change.id)?.change === change) this.watched.delete(change.id)
  }

  stop(): void {
    clearInterval(this.timer)
    this.sub?.unsubscribe()
  }

  private scan(): void {
    const now = Date.now()
    for (const [id, w] of this.watched) {
      if (w.due > now || this.sending.has(id)) continue
      this.sending.add(id)
      void requestDelivery(this.nc, w.change)
        .then((report) => {
          if (this.watched.get(id) === w) this.watched.delete(id)
          this.log.info(
            { account: id, seq: w.change.seq, servers: report.servers.map((s) => `${s.name}:${s.outcome}`) },
            "change delivered in a silent peer's place",
          )
        })
        .catch((e: unknown) => this.log.warn({ account: id, err: { message: (e as Error).message } }, 'takeover delivery failed, will retry'))
        .finally(() => this.sending.delete(id))
    }
  }
}
