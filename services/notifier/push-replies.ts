import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core'
import type { Change, ServerOutcome } from '../../shared/index.ts'
import type { KnownServer } from './server-directory.ts'
import { serverAnswerOf, type ServerAnswer } from './server-reply.ts'

/** Every client inbox in the system account: nsc makes a new one per push, so no narrower subject fits. */
const CLIENT_INBOXES = '_INBOX.>'
/**
 * Answers are kept for one to two of these: a delivery comes after a signer round trip and a synced write,
 * tens of milliseconds under load. One that comes later is broadcast.
 */
const KEEP_MS = 2000
/** Reply subjects kept per period at most: past it (thousands of servers in a burst), changes are broadcast. */
const MAX_KEPT = 100_000
/** A bulk import: at least this many changes asked within one second turn the watch on. */
const BURST_CHANGES = 32
/** The watch stays on this long after the last burst. */
const WATCH_MS = 30_000
/**
 * How a server's claim-update reply starts: `server` first since 2.10, `data` or `error` first before (2.9
 * marshals a map, keys sorted). Anything else on an inbox (signer verdicts, notifier reports, LOOKUP answers)
 * is dropped before it is parsed; our resolver's replies (`server` first) are dropped once parsed.
 */
const SERVER_REPLY_HEADS = ['{"server":', '{"data":', '{"error":'].map((h) => Buffer.from(h))
const MAX_REPLY_BYTES = 4096
/**
 * Only a cache server's answer ("jwt updated cache", "jwt update cache skipped", protocol.md §3.2) may stand
 * for a broadcast. Full servers answer LOOKUPs themselves, and URL servers fetch from elsewhere: in a fleet
 * with them (a migration under way) a server that skipped the push may load the account from one of them,
 * unseen by our resolver, so every change is broadcast there as before.
 */
const CACHE_ANSWER = /\bcache\b/

/**
 * What every nats-server answered to a client's own push. nsc and natscli push to the servers as well as to our
 * resolver (protocol.md §1), so each server has verified the token and applied it (or, not having the account
 * loaded, skipped it) before the change is even stored. When the resolver vouches that what it stored is
 * that very token and nothing could have reached a server around it (services/resolver/push-receipts.ts), and
 * every server we know answered that push without refusing it, our broadcast would make each server verify
 * the same JWT again to give the same answer: those answers are the report, and nothing is broadcast.
 *
 * Seeing them means subscribing to every client inbox of the system account, through which every reply to
 * a client (our own services' included) then passes a second time. That only pays off in a bulk import
 * (`nsc push -A`), so the watch is on only for a while after BURST_CHANGES changes were asked within a second
 * (`asked`), and pushes outside such a burst are broadcast as ever. Whatever does not add up (a server
 * missing, a refusal, an answer not seen in time) is broadcast too.
 */
export class PushReplies {
  private sub: Subscription | undefined
  private timer: NodeJS.Timeout | undefined
  private watchUntil = 0
  private second = 0
  private askedThisSecond = 0
  private recent = new Map<string, ServerAnswer[]>()
  private older = new Map<string, ServerAnswer[]>()

  constructor(
    private readonly nc: NatsConnection,
    /** Our own broadcasts' reply subjects: not a client's. */
    private readonly ownPrefix: string,
  ) {}

  /** `n` changes were asked for: in a burst, the clients' inboxes are watched for a while. */
  asked(n: number): void {
    const now = Date.now()
    const second = Math.floor(now / 1000)
    if (second !== this.second) {
      this.second = second
      this.askedThisSecond = 0
    }
    this.askedThisSecond += n
    if (this.askedThisSecond < BURST_CHANGES) return
    this.watchUntil = now + WATCH_MS
    if (this.sub !== undefined) return
    this.sub = this.nc.subscribe(CLIENT_INBOXES, {
      callback: (err, m) => {
        if (err === null) this.collect(m)
      },
    })
    this.timer = setInterval(() => this.turn(), KEEP_MS).unref()
  }

  /**
   * The servers' answers to the push `change.receipt` names, one per known server, when they can stand for a
   * broadcast of `change`; undefined when it must be broadcast.
   */
  vouched(change: Change, known: KnownServer[]): ServerOutcome[] | undefined {
    if (change.receipt === undefined || change.kind === 'deleted' || change.enforce === true || known.length === 0) return undefined
    // a push's answers may straddle a turn of the two periods
    const answers = [...(this.older.get(change.receipt) ?? []), ...(this.recent.get(change.receipt) ?? [])]
    if (answers.length === 0) return undefined
    const byServer = new Map<string, ServerOutcome>()
    for (const a of answers) {
      if (a.account !== change.id || a.outcome === 'refused' || !CACHE_ANSWER.test(a.message)) return undefined
      byServer.set(a.id, { id: a.id, name: a.name, outcome: a.outcome, message: a.message })
    }
    if (!known.every((s) => byServer.has(s.id))) return undefined
    // used: a push is delivered once
    this.recent.delete(change.receipt)
    this.older.delete(change.receipt)
    return [...byServer.values()]
  }

  private collect(m: Msg): void {
    if (m.data.length > MAX_REPLY_BYTES || m.subject.startsWith(this.ownPrefix)) return
    if (!SERVER_REPLY_HEADS.some((h) => Buffer.compare(m.data.subarray(0, h.length), h) === 0)) return
    const answer = serverAnswerOf(m)
    if (answer === undefined) return
    const list = this.recent.get(m.subject)
    if (list !== undefined) list.push(answer)
    else if (this.recent.size < MAX_KEPT) this.recent.set(m.subject, [answer])
  }

  private turn(): void {
    this.older = this.recent
    this.recent = new Map()
    if (Date.now() > this.watchUntil) this.stop()
  }

  private stop(): void {
    this.sub?.unsubscribe()
    this.sub = undefined
    clearInterval(this.timer)
    this.timer = undefined
    this.recent = new Map()
    this.older = new Map()
  }
}
