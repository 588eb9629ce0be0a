import { createHash } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { DeliverPolicy, JetStreamApiError, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream'
import { peekClaims, type Logger } from '../../../shared/index.ts'
import type { StoredActivation } from './activation-store.ts'
import { Header, STREAM } from './jetstream-stream.ts'
import type { Op } from './resolver-db.ts'
import { stampOf } from './rules.ts'
import { LocalTables } from './tables.ts'

const APPLIED_KEY = 'js-applied'
/** What the last applied message was, so a restart can tell the stream still has it at that sequence. */
const APPLIED_MARK_KEY = 'js-applied-mark'
const WATCHDOG_MS = 2000
/** At most this many idle ticks between replacements (16 s). */
const MAX_PATIENCE = 8

/**
 * This instance's local copy of the stream, in LevelDB: every message is applied in stream order, together
 * with the sequence it had, so lookups stay local and synchronous (and keep answering while JetStream has no
 * quorum), and a restart resumes after the last applied message.
 */
export class StreamView {
  applied = 0
  /** markOf(the message at `applied`), '' for a view written before marks were kept. */
  appliedMark = ''
  private waiters: { seq: number; wake: () => void }[] = []
  private messages: ConsumerMessages | undefined
  private running: Promise<void> | undefined
  private watchdog: NodeJS.Timeout | undefined
  private stopped = false
  /** The highest sequence known to exist: the view is behind while applied is below it. */
  private wanted = 0

  constructor(
    readonly tables: LocalTables,
    private readonly log: Logger,
  ) {}

  async load(): Promise<void> {
    this.applied = Number((await this.tables.rdb.meta.get(APPLIED_KEY)) ?? 0)
    this.appliedMark = (await this.tables.rdb.meta.get(APPLIED_MARK_KEY)) ?? ''
  }

  /**
   * False when the stream holds another message at the view's last applied sequence: it was restored from an
   * older backup (or recreated) and written again since, so its sequences no longer mean what the view applied.
   * A sequence past the end, or gone to a limit, cannot be compared here and counts as the same.
   */
  async sameStream(jsm: JetStreamManager): Promise<boolean> {
    if (this.applied === 0 || this.appliedMark === '') return true
    try {
      const m = await jsm.streams.getMessage(STREAM, { seq: this.applied })
      return m === null || markOf(m.subject, m.header?.get(Header.at) ?? '', m.data) === this.appliedMark
    } catch (e) {
      if (e instanceof JetStreamApiError && e.code === NO_MESSAGE) return true
      // the stream answered its info a moment ago: a failure here is not a reason to refuse to start
      this.log.warn({ err: { message: (e as Error).message }, applied: this.applied }, 'could not compare the local view with the stream; resuming')
      return true
    }
  }

  /**
   * Follows the stream from the first message not yet applied, with an ordered consumer. One whose node died
   * can stall without noticing for a long time, so a watchdog replaces it whenever the view is known to be
   * behind (a write here was acked, or the stream says so) and has not moved for a while.
   */
  async start(js: JetStreamClient, jsm: JetStreamManager): Promise<void> {
    this.running = this.follow(js)
    let seen = this.applied
    // Ticks without progress before the next replacement: doubled after each replacement that brought none, so
    // a consumer that takes longer than a tick to be created and deliver (a loaded server) is not replaced
    // before it can, again and again.
    let patience = 1
    let idle = 0
    this.watchdog = setInterval(() => {
      void jsm.streams
        .info(STREAM)
        .then((info) => (this.wanted = Math.max(this.wanted, info.state.last_seq)))
        .catch(() => undefined)
      if (this.applied !== seen) {
        patience = 1
        idle = 0
      } else if (this.wanted > this.applied && ++idle >= patience) {
        this.log.warn({ applied: this.applied, wanted: this.wanted, idleMs: idle * WATCHDOG_MS }, 'the local view is stalled; following the stream anew')
        this.messages?.stop()
        patience = Math.min(patience * 2, MAX_PATIENCE)
        idle = 0
      }
      seen = this.applied
    }, WATCHDOG_MS)
    this.watchdog.unref()
  }

  private async follow(js: JetStreamClient): Promise<void> {
    while (!this.stopped) {
      try {
        const consumer = await js.consumers.get(
          STREAM,
          this.applied === 0
            ? { deliver_policy: DeliverPolicy.All }
            : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.applied + 1 },
        )
        this.messages = await consumer.consume({ expires: 5000 })
        if (this.stopped) this.messages.stop()
        for await (const m of this.messages) {
          if (m.seq > this.applied) await this.apply(m)
        }
      } catch (e) {
        if (this.stopped) return
        this.log.warn({ err: { message: (e as Error).message }, applied: this.applied }, 'following the stream failed, retrying')
        await delay(WATCHDOG_MS)
      }
    }
  }

  /** Resolves once every message up to `seq` is applied here, or after `ms` (false). */
  caughtUp(seq: number, ms = 10_000): Promise<boolean> {
    if (this.applied >= seq) return Promise.resolve(true)
    this.wanted = Math.max(this.wanted, seq)
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

  /**
   * True once this view holds the stream's last message on `subject` (at once when it already did). False
   * when the stream has none, or when JetStream or the view take over `ms` (no quorum: lookups keep
   * answering from the view as it is).
   */
  async reachLast(jsm: JetStreamManager, subject: string, ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const last = jsm.streams.getMessage(STREAM, { last_by_subj: subject }).then(
      (m) => m?.seq,
      () => undefined,
    )
    const seq = await Promise.race([last, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))])
    clearTimeout(timer)
    return seq !== undefined && this.caughtUp(seq, ms)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.watchdog)
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
    const mark = markOf(m.subject, m.headers?.get(Header.at) ?? '', m.data)
    await t.commit(
      plan,
      [
        { type: 'put', sublevel: t.rdb.meta, key: APPLIED_KEY, value: String(m.seq) },
        { type: 'put', sublevel: t.rdb.meta, key: APPLIED_MARK_KEY, value: mark },
      ],
      { sync: false },
    )
    this.applied = m.seq
    this.appliedMark = mark
    const ready = this.waiters.filter((w) => w.seq <= m.seq)
    if (ready.length > 0) {
      this.waiters = this.waiters.filter((w) => w.seq > m.seq)
      for (const w of ready) w.wake()
    }
  }
}

/** 10037: no message found (at that sequence). */
const NO_MESSAGE = 10037

/** A digest of what makes a message this message: its subject, when it was written, its body. */
function markOf(subject: string, at: string, data: Uint8Array): string {
  return createHash('sha256').update(subject).update('\0').update(at).update('\0').update(data).digest('base64url')
}
