/** Pushes and lookups are remembered for one to two of these. */
const QUIET_MS = 5000
/**
 * Lookups are recorded only while pushes come in, and a push is vouched for only once they have been for
 * this long: a server that skipped a push can look the account up only after it handled the push, which
 * reaches us a few milliseconds later at most.
 */
export const LOOKBACK_MS = 1000

/** One client push in progress: the token and the reply subject the servers answered it on. */
interface Receipt {
  jwt: string
  reply: string
  at: number
  /** Cleared when anything could have left a server on another version than the pushed token. */
  sound: boolean
}

/** Ids seen in the last one to two periods: two sets, the older dropped at each turn. */
class Recent {
  private now = new Set<string>()
  private before = new Set<string>()
  add(id: string): void {
    this.now.add(id)
  }
  has(id: string): boolean {
    return this.now.has(id) || this.before.has(id)
  }
  turn(): void {
    this.before = this.now
    this.now = new Set()
  }
}

/**
 * Which accepted pushes the servers' own replies can vouch for (level engine). nsc's and natscli's push
 * reaches every nats-server as well as us, and each server verifies it and applies it (or, not having the
 * account loaded, skips it) before we have even validated it (protocol.md §1). When what we store is that very
 * token, the notifier can take each server's reply to the client's push as the report of the delivery, and
 * spare every server a second verification of the same JWT (services/notifier/push-replies.ts).
 *
 * That holds only while nothing else could have reached a server around it. So a push is vouched for only if
 * no other push of the account came within QUIET_MS (two pushes may reach two servers in opposite orders) and
 * no LOOKUP of it was answered with a JWT within QUIET_MS up to its commit (a server that skipped the push may
 * have loaded the version before it). Anything else is broadcast, as every refusal and restore is.
 */
export class PushReceipts {
  private readonly open = new Map<string, Receipt>()
  private readonly pushed = new Recent()
  private readonly served = new Recent()
  private readonly timer: NodeJS.Timeout
  /** Since when lookups are recorded (0: not now, no push lately); LOOKUP's hot path pays nothing else. */
  private recordingSince = 0
  private lastPush = 0

  constructor(private readonly clock: () => number = Date.now) {
    this.timer = setInterval(() => this.turn(), QUIET_MS).unref()
  }

  /** A client pushed `jwt` of `id`, asking for replies on `reply`. */
  arrived(id: string, jwt: string, reply: string | undefined): void {
    const now = this.clock()
    if (this.recordingSince === 0) this.recordingSince = now
    this.lastPush = now
    const other = this.open.get(id)
    if (other !== undefined) other.sound = false
    const sound =
      other === undefined &&
      now - this.recordingSince >= LOOKBACK_MS &&
      !this.pushed.has(id) &&
      !this.served.has(id) &&
      reply !== undefined &&
      reply !== ''
    this.pushed.add(id)
    this.open.set(id, { jwt, reply: reply ?? '', at: now, sound })
  }

  /** A LOOKUP of `id` was answered with a JWT. Kept cheap: it runs on every lookup hit. */
  servedJwt(id: string): void {
    if (this.recordingSince === 0) return
    this.served.add(id)
    if (this.open.size === 0) return
    const r = this.open.get(id)
    if (r !== undefined) r.sound = false
  }

  /** The push of `jwt` ended without storing it: refused, already current, re-signed, or failed. */
  ended(id: string, jwt: string): void {
    if (this.open.get(id)?.jwt === jwt) this.open.delete(id)
  }

  /**
   * Called as the change of `id` to `jwt` goes to the notifier, once committed (lookups answer `jwt` from
   * now on): the reply subject of the push that brought it, if its servers' replies can stand for a broadcast.
   */
  take(id: string, jwt: string): string | undefined {
    const r = this.open.get(id)
    if (r === undefined || r.jwt !== jwt) return undefined
    this.open.delete(id)
    return r.sound && !this.served.has(id) ? r.reply : undefined
  }

  close(): void {
    clearInterval(this.timer)
  }

  private turn(): void {
    this.pushed.turn()
    this.served.turn()
    // a push whose change was never taken (superseded before delivery, or resumed from the outbox later)
    const stale = this.clock() - 2 * QUIET_MS
    for (const [id, r] of this.open) if (r.at < stale) this.open.delete(id)
    // no push for a while: stop recording lookups (the sets empty by the next turns)
    if (this.open.size === 0 && this.lastPush < stale) this.recordingSince = 0
  }
}
