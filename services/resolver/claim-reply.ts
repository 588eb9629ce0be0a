import { hostname } from 'node:os'
import { VERSION, type AppError } from '../../shared/index.ts'

/**
 * Replies in nats-server's claim-update dialect (protocol.md §3.2), which nsc prints and natscli counts.
 * nsc dereferences `server` and needs a non-empty name, an RFC3339 `time`, an unsigned `seq` and a boolean
 * `jetstream` (protocol.md §9.10).
 */
export class ClaimReplies {
  private seq = 0
  private readonly host = hostname()

  constructor(private readonly serviceId: string) {}

  private server() {
    return {
      name: 'resolver',
      host: this.host,
      id: this.serviceId,
      ver: VERSION,
      jetstream: false,
      flags: 0,
      seq: ++this.seq,
      time: new Date().toISOString(),
    }
  }

  ok(message: string, account?: string): string {
    return this.data({ ...(account ? { account } : {}), code: 200, message })
  }

  /** A success whose `data` is not a status (LIST answers with an array of ids). */
  data(data: unknown): string {
    return JSON.stringify({ server: this.server(), data })
  }

  /**
   * `description` keeps nats-server's "<what> - <why>" shape; `code` is our status (400, 403, 409, 503...)
   * rather than the servers' constant 500, and `reason` the stable error code to branch on.
   */
  error(what: string, err: AppError, account?: string): string {
    return JSON.stringify({
      server: this.server(),
      error: { ...(account ? { account } : {}), code: err.status, description: `${what} - ${err.message}`, reason: err.code },
    })
  }
}
