/** How long after its delivery was answered a broadcast's echo may still arrive (over routes, under load). */
const ECHO_MS = 2000

/**
 * The versions this instance is broadcasting through the notifier, per account. The notifier's broadcast on
 * `$SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE` reaches this resolver too, and is recognised by it (update.ts isEcho):
 * answered by nobody, and, when a newer version was stored while it was on its way, not refused as outdated
 * and restored after (which sent the newer version once more and counted an `account-update` error).
 */
export class Echoes {
  /** account → JWT → how many deliveries of it are in flight or within ECHO_MS of their end */
  private readonly sent = new Map<string, Map<string, number>>()

  /** Runs `deliver` with `jwt` counted as being broadcast until shortly after it settles. */
  async around<T>(id: string, jwt: string, deliver: () => Promise<T>): Promise<T> {
    this.add(id, jwt, 1)
    try {
      return await deliver()
    } finally {
      setTimeout(() => this.add(id, jwt, -1), ECHO_MS).unref()
    }
  }

  has(id: string, jwt: string): boolean {
    return (this.sent.get(id)?.get(jwt) ?? 0) > 0
  }

  private add(id: string, jwt: string, n: number): void {
    let byJwt = this.sent.get(id)
    if (byJwt === undefined) this.sent.set(id, (byJwt = new Map()))
    const count = (byJwt.get(jwt) ?? 0) + n
    if (count > 0) byJwt.set(jwt, count)
    else byJwt.delete(jwt)
    if (byJwt.size === 0) this.sent.delete(id)
  }
}
