import { createHash } from 'node:crypto'
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream'
import { peekClaims, type Logger } from '../../../shared/index.ts'
import type { StoredActivation } from './activation-store.ts'
import { Header, STREAM } from './jetstream-stream.ts'
import type { Op } from './resolver-db.ts'
import { stampOf } from './rules.ts'
import { LocalTables } from './tables.ts'

const APPLIED_KEY = 'js-applied'

/**
 * This instance's local copy of the stream, in LevelDB: every message is applied in stream order, together
 * with the sequence it had, so lookups stay local and synchronous (and keep answering while JetStream has no
 * quorum), and a restart resumes after the last applied message.
 */
export class StreamView {
  applied = 0
  private waiters: { seq: number; wake: () => void }[] = []
  private messages: ConsumerMessages | undefined
  private running: Promise<void> | undefined

  constructor(
    readonly tables: LocalTables,
    private readonly log: Logger,
  ) {}

  async load(): Promise<void> {
    this.applied = Number((await this.tables.rdb.meta.get(APPLIED_KEY)) ?? 0)
  }

  /** Follows the stream from the first message not yet applied, with an ordered consumer that heals itself. */
  async start(js: JetStreamClient): Promise<void> {
    const consumer = await js.consumers.get(
      STREAM,
      this.applied === 0 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.applied + 1 },
    )
    this.messages = await consumer.consume()
    this.running = (async () => {
      for await (const m of this.messages!) {
        if (m.seq <= this.applied) continue
        try {
          await this.apply(m)
        } catch (e) {
          // a local write failed: stop here rather than skip a message; a restart resumes at this one
          this.log.error({ err: e, seq: m.seq }, 'applying a stream message failed; the local view stops here')
          this.messages!.stop()
          return
        }
      }
    })()
  }

  /** Resolves once every message up to `seq` is applied here, or after `ms` (false). */
  caughtUp(seq: number, ms = 10_000): Promise<boolean> {
    if (this.applied >= seq) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms)
      this.waiters.push({
        seq,
        wake: () => {
          clearTimeout(timer)
          resolve(true)
        },
      })
    })
  }

  async stop(): Promise<void> {
    this.messages?.stop()
    await this.running
  }

  private async apply(m: JsMsg): Promise<void> {
    const [, kind, key, leaf] = m.subject.split('.') as [string, string, string, string | undefined]
    const plan = LocalTables.plan()
    const meta = { seq: m.seq, at: m.headers?.get(Header.at) || new Date(m.info.timestampNanos / 1e6).toISOString(), via: m.headers?.get(Header.via) ?? '' }
    const extra: Op[] = []
    const t = this.tables
    if (kind === 'chg' && leaf === 'v') {
      const body = m.string()
      const stored = t.accounts.readNow(key)
      if (m.headers?.get(Header.kind) === 'deleted') {
        const hash = createHash('sha256').update(body).digest('hex')
        t.addDeletion(plan, key, stored, { token: body, iat: peekClaims(body).iat ?? 0, hash }, meta, false)
      } else t.addVersion(plan, stored, stampOf(key, body), meta, false)
    } else if (kind === 'replay') extra.push(t.tombs.rememberOp(key, Number(m.string())))
    else if (kind === 'actv') extra.push(t.activations.putOp(m.json<StoredActivation>()))
    // restores are for delivery only; anything else is not ours: its sequence still counts as applied
    plan.ops.push(...extra)
    await t.commit(plan, [{ type: 'put', sublevel: t.rdb.meta, key: APPLIED_KEY, value: String(m.seq) }], { sync: false })
    this.applied = m.seq
    const ready = this.waiters.filter((w) => w.seq <= m.seq)
    if (ready.length > 0) {
      this.waiters = this.waiters.filter((w) => w.seq > m.seq)
      for (const w of ready) w.wake()
    }
  }
}
