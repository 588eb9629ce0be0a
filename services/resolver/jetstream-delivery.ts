import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream'
import { setTimeout as delay } from 'node:timers/promises'
import { requestDelivery, type Logger, type NatsConnection } from '../../shared/index.ts'
import { reportDelivered } from './delivery.ts'
import { Echoes } from './echoes.ts'
import { DELIVERY_CONSUMER, Header, STREAM } from './store/jetstream-stream.ts'
import type { JetStreamStore } from './store/jetstream.ts'
import { recreatedSince } from './store/rules.ts'
import type { OutboxEntry } from './store/types.ts'

const MAX_IN_FLIGHT = 64
const RETRY_MS = 1000
/** How long a start keeps asking for the delivery consumer before it gives up. */
const CONSUMER_WAIT_MS = 60_000

/**
 * Hands the stream's changes to the notifier from the one durable consumer every instance pulls from: each
 * change goes to one instance, is acked once the notifier has reported, and is redelivered (to any instance)
 * if that one dies first. A change superseded by a newer version is acked unsent: the newer one's own message
 * delivers it. Servers apply whatever arrives last, so if the account changed while a delivery was on its way
 * the current version is sent once more after it.
 */
export class JetStreamDelivery {
  private messages: ConsumerMessages | undefined
  private running: Promise<void> | undefined
  private readonly sending = new Set<Promise<void>>()
  /** Accounts this instance is delivering now, by how many of their changes. */
  private readonly delivering = new Map<string, number>()
  private readonly echoes = new Echoes()

  constructor(
    private readonly nc: NatsConnection,
    private readonly store: JetStreamStore,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const consumer = await this.deliveryConsumer()
    this.messages = await consumer.consume({ max_messages: MAX_IN_FLIGHT, expires: 5000 })
    this.running = (async () => {
      for await (const m of this.messages!) {
        while (this.sending.size >= MAX_IN_FLIGHT) await Promise.race(this.sending)
        const p = this.handle(m).finally(() => this.sending.delete(p))
        this.sending.add(p)
      }
    })()
  }

  // The store opened, so the consumer exists; but on a cluster that has just formed, or while a node restarts,
  // asking for it can time out for a few seconds. Ask again rather than fail the start.
  private async deliveryConsumer(): Promise<Consumer> {
    const deadline = Date.now() + CONSUMER_WAIT_MS
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.store.storage.js.consumers.get(STREAM, DELIVERY_CONSUMER)
      } catch (e) {
        if (Date.now() > deadline) throw e
        this.log.warn({ attempt, err: { message: (e as Error).message } }, 'delivery consumer not reachable yet, retrying')
        await delay(Math.min(2000, 250 * attempt))
      }
    }
  }

  /** This instance is delivering a change of `id`: servers may lag the store for a moment. */
  busy(id: string): boolean {
    return this.delivering.has(id)
  }

  /** `jwt` of `id` is being broadcast (or just was): its echo on the per-account subject is our own. */
  broadcasting(id: string, jwt: string): boolean {
    return this.echoes.has(id, jwt)
  }

  close(): void {
    this.messages?.stop()
  }

  /** Takes no more changes and waits for those being delivered; what is unacked is redelivered later. */
  async settle(): Promise<void> {
    this.messages?.stop()
    await this.running
    await Promise.allSettled([...this.sending])
  }

  private async handle(m: JsMsg): Promise<void> {
    const id = m.subject.split('.')[2] ?? ''
    this.delivering.set(id, (this.delivering.get(id) ?? 0) + 1)
    try {
      await this.handleOne(m)
    } finally {
      const n = (this.delivering.get(id) ?? 1) - 1
      if (n === 0) this.delivering.delete(id)
      else this.delivering.set(id, n)
    }
  }

  private async handleOne(m: JsMsg): Promise<void> {
    const [, , id, leaf] = m.subject.split('.') as [string, string, string, string]
    const kind = m.headers?.get(Header.kind) ?? ''
    try {
      // The view must hold this message (and whatever came before it) before its rules can judge it.
      if (!(await this.store.view.caughtUp(m.seq))) throw new Error('the local view is behind the stream')
      const now = this.store.readNow(id)
      // a restore marker sends what the view holds now: the version, or for `deleted` the stored deletion
      const restoring = leaf === 'r'
      const tomb = restoring && kind === 'deleted' ? await this.store.tombstoneOf(id) : undefined
      const queued: OutboxEntry = {
        seq: m.seq,
        id,
        kind: restoring ? (tomb !== undefined ? 'deleted' : 'restore') : (kind as OutboxEntry['kind']),
        jwt: restoring ? (tomb?.token ?? now?.jwt ?? '') : m.string(),
        at: m.headers?.get(Header.at) ?? '',
        ...(m.headers?.get(Header.enforce) === '1' ? { enforce: true } : {}),
      }
      const superseded = queued.kind === 'deleted' ? now !== undefined : now === undefined || now.jwt !== queued.jwt
      if (superseded) {
        this.log.info({ account: id, seq: m.seq, kind: queued.kind }, 'change superseded before delivery, not sent')
        return m.ack()
      }
      const recreated = queued.kind === 'deleted' ? recreatedSince(queued, (other) => this.store.readNow(other) !== undefined) : []
      if (recreated.length > 0) {
        this.log.warn({ account: id, seq: m.seq, recreated }, 'delete request not sent again: it names re-created accounts')
        return m.ack()
      }
      await this.deliver(queued)
      const after = this.store.readNow(id)
      if (queued.kind !== 'deleted' ? after?.jwt !== queued.jwt : after !== undefined) {
        // changed while ours was on its way: make sure the servers end on the current version
        if (after !== undefined) await this.deliver({ ...queued, kind: 'restore', jwt: after.jwt })
      }
      m.ack()
    } catch (err) {
      this.log.warn({ account: id, seq: m.seq, err: { message: (err as Error).message } }, 'delivery failed, will retry')
      m.nak(RETRY_MS)
    }
  }

  private async deliver(change: OutboxEntry): Promise<void> {
    const report = await this.echoes.around(change.id, change.jwt, () => requestDelivery(this.nc, change))
    reportDelivered(this.nc, this.log, change, report)
  }
}
