import { publishChange, publishDelivery, requestDelivery, type DeliveryReport, type Logger, type NatsConnection } from '../../shared/index.ts'
import { Echoes } from './echoes.ts'
import type { PushReceipts } from './push-receipts.ts'
import { recreatedSince, whatToDeliver } from './store/rules.ts'
import type { OutboxEntry, OutboxStore } from './store/types.ts'

const RETRY_MS = 1000
const MAX_IN_FLIGHT = 64

/** Logs and announces what a delivery reached; both engines' deliveries end here. */
export function reportDelivered(nc: NatsConnection, log: Logger, change: OutboxEntry, report: DeliveryReport): void {
  publishDelivery(nc, report)
  log.info(
    { account: change.id, seq: change.seq, kind: change.kind, servers: report.servers.map((s) => `${s.name}:${s.outcome}`), ...(report.fromPush ? { fromPush: true } : {}) },
    'change delivered',
  )
}

/**
 * Hands stored changes to the notifier and forgets them only once it reports them delivered; until then
 * they stay in the store's outbox, so a change accepted while no notifier runs (or before a crash) is
 * delivered when one answers. Per account only the newest change is sent, one at a time: servers apply
 * whatever arrives last, so an older version must never overtake a newer one.
 */
export class Delivery {
  /** The newest undelivered change per account, and every older outbox entry it supersedes. */
  private readonly pending = new Map<string, { change: OutboxEntry; seqs: number[] }>()
  private readonly inflight = new Set<string>()
  /** The sends awaiting the notifier's report, so a shutdown can wait for them. */
  private readonly sending = new Set<Promise<void>>()
  private retryTimer: NodeJS.Timeout | undefined
  private closed = false
  private readonly echoes = new Echoes()

  constructor(
    private readonly nc: NatsConnection,
    private readonly store: OutboxStore,
    private readonly log: Logger,
    /** This resolver instance's id, stamped on change events so it can tell its own from its peers'. */
    private readonly origin?: string,
    /** Pushes whose servers' replies may stand for the broadcast (push-receipts.ts). */
    private readonly receipts?: PushReceipts,
  ) {}

  /** Queues every change left in the outbox by an earlier run. */
  async resume(): Promise<void> {
    const left = await this.store.pendingChanges(Number.MAX_SAFE_INTEGER)
    for (const change of left) this.queue(change)
    if (left.length > 0) this.log.info({ count: left.length }, 'resuming undelivered changes')
    this.kick()
  }

  /** Announces a newly stored change and queues it for the servers: the store's onChange. */
  accepted(change: OutboxEntry): void {
    publishChange(this.nc, change, this.origin)
    this.queue(change)
    this.kick()
  }

  /** `jwt` of `id` is being broadcast (or just was): its echo on the per-account subject is our own. */
  broadcasting(id: string, jwt: string): boolean {
    return this.echoes.has(id, jwt)
  }

  /** A change of `id` is waiting or on its way to the servers: they may lag the store for a moment. */
  busy(id: string): boolean {
    return this.pending.has(id) || this.inflight.has(id)
  }

  close(): void {
    this.closed = true
    clearTimeout(this.retryTimer)
  }

  /**
   * Starts no more deliveries and waits for those the notifier is working on (each bounded by its request
   * timeout), so their reports are not lost to a draining connection. What is left stays in the outbox.
   */
  async settle(): Promise<void> {
    this.close()
    await Promise.allSettled([...this.sending])
  }

  private queue(change: OutboxEntry): void {
    const p = this.pending.get(change.id)
    if (p === undefined) this.pending.set(change.id, { change, seqs: [change.seq] })
    else {
      p.seqs.push(change.seq)
      // A revocation coalesced into a newer version is still enforced by it: keep the notifier watching.
      const enforce = change.enforce === true || p.change.enforce === true
      if (change.seq > p.change.seq) p.change = enforce ? { ...change, enforce } : change
      else if (enforce) p.change = { ...p.change, enforce }
    }
  }

  private kick(): void {
    if (this.retryTimer !== undefined) return
    for (const [id, p] of this.pending) {
      if (this.closed || this.inflight.size >= MAX_IN_FLIGHT) return
      if (this.inflight.has(id)) continue
      this.pending.delete(id)
      this.inflight.add(id)
      const sent = this.send(p.change, p.seqs).finally(() => this.sending.delete(sent))
      this.sending.add(sent)
    }
  }

  private async send(queued: OutboxEntry, seqs: number[]): Promise<void> {
    try {
      const now = whatToDeliver(queued, this.store.readNow(queued.id))
      if (now === undefined) {
        for (const seq of seqs) await this.store.delivered(seq)
        this.log.info({ account: queued.id, seq: queued.seq, kind: queued.kind }, 'change superseded before delivery, not sent')
        return
      }
      return await this.deliver(now, seqs)
    } catch (err) {
      this.retryLater(queued, seqs, err)
    } finally {
      this.inflight.delete(queued.id)
      if (!this.closed) this.kick()
    }
  }

  private async deliver(change: OutboxEntry, seqs: number[]): Promise<void> {
    // Servers acted on a delete request when it was first sent: a resend would cut off re-created accounts.
    const recreated = change.kind === 'deleted' ? recreatedSince(change, (id) => this.store.readNow(id) !== undefined) : []
    if (recreated.length > 0) {
      for (const seq of seqs) await this.store.delivered(seq)
      this.log.warn({ account: change.id, seq: change.seq, recreated }, 'delete request not sent again: it names re-created accounts')
      return
    }
    // taken as it is sent, after its commit: lookups already answer this very version (a deletion's request
    // is no pushed account JWT, so it never has one)
    const receipt = this.receipts?.take(change.id, change.jwt)
    const asked = receipt === undefined || change.enforce === true ? change : { ...change, receipt }
    const report = await this.echoes.around(change.id, change.jwt, () => requestDelivery(this.nc, asked))
    for (const seq of seqs) await this.store.delivered(seq)
    reportDelivered(this.nc, this.log, change, report)
  }

  private retryLater(change: OutboxEntry, seqs: number[], err: unknown): void {
    if (this.closed) return
    this.log.warn({ account: change.id, seq: change.seq, err: { message: (err as Error).message } }, 'delivery failed, will retry')
    // Put it back; if something newer arrived meanwhile, that one carries these seqs to deletion too.
    const p = this.pending.get(change.id)
    if (p === undefined) this.pending.set(change.id, { change, seqs })
    else p.seqs.push(...seqs)
    // No notifier (or a sick one): stop sending until the timer, rather than spin on instant failures.
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = undefined
      this.kick()
    }, RETRY_MS)
  }
}
