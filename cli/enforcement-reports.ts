import type { NatsConnection, Subscription } from '@nats-io/nats-core'
import { subjects, type DeliveryReport, type ServerEnforcement } from '../shared/index.ts'

/** What `mesh push` says about one enforcing push, readable and in --json. */
export interface EnforcementResult {
  /** `in-force` when every server cut off what the change forbids within the grace period. */
  outcome: 'in-force' | 'failed' | 'no-report'
  inForce: number
  servers: number
  closed: number
  graceMs?: number
  perServer: ServerEnforcement[]
}

/** Reads the notifier's report of one enforcing change into the push result. */
export function enforcementResult(report: DeliveryReport | undefined): EnforcementResult {
  const per = [...(report?.enforcement?.servers ?? [])].sort((a, b) => a.name.localeCompare(b.name))
  if (report?.enforcement === undefined) return { outcome: 'no-report', inForce: 0, servers: 0, closed: 0, perServer: [] }
  const inForce = per.filter((s) => s.outcome === 'enforced').length
  return {
    outcome: per.length > 0 && inForce === per.length ? 'in-force' : 'failed',
    inForce,
    servers: per.length,
    closed: per.reduce((n, s) => n + s.closed, 0),
    graceMs: report.enforcement.graceMs,
    perServer: per,
  }
}

/** `revocation in force on 3/3 servers, 2 connections closed`, then one line per failing server. */
export function enforcementLines(account: string, e: EnforcementResult, waitedMs: number): string[] {
  if (e.outcome === 'no-report') return [`${account}: no enforcement report within ${waitedMs / 1000}s (is the notifier running?)`]
  const plural = e.closed === 1 ? '' : 's'
  const lines = [`${account}: revocation in force on ${e.inForce}/${e.servers} servers, ${e.closed} connection${plural} closed`]
  for (const s of e.perServer) {
    const who = s.connections.map((c) => c.name ?? c.user).join(', ')
    if (s.outcome === 'failed') {
      const why = s.stillConnected < 0 ? 'did not answer' : `still holds ${s.stillConnected} revoked connection(s)`
      lines.push(`  ${s.name}: FAILED, ${why} after ${(e.graceMs ?? 0) / 1000}s`)
    } else if (s.closed > 0) lines.push(`  ${s.name}: closed ${s.closed} (${who})`)
  }
  return lines
}

/**
 * Collects the notifier's reports of enforcing changes. Subscribed before the first push, so a report
 * published while the push's reply is on its way is not missed; matched by the JWT's sha256.
 */
export class EnforcementReports {
  private readonly seen = new Map<string, DeliveryReport>()
  private readonly waiters = new Map<string, (r: DeliveryReport) => void>()
  private readonly sub: Subscription

  constructor(nc: NatsConnection) {
    this.sub = nc.subscribe(subjects.notifierReports(), {
      callback: (err, m) => {
        if (err !== null) return
        let r: DeliveryReport
        try {
          r = m.json<DeliveryReport>()
        } catch {
          return // not a report
        }
        if (typeof r?.digest !== 'string') return
        this.seen.set(r.digest, r)
        this.waiters.get(r.digest)?.(r)
      },
    })
  }

  /** The report of the version with this digest, or undefined after `ms`. */
  wait(digest: string, ms: number): Promise<DeliveryReport | undefined> {
    const have = this.seen.get(digest)
    if (have !== undefined) return Promise.resolve(have)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(digest)
        resolve(undefined)
      }, ms)
      this.waiters.set(digest, (r) => {
        clearTimeout(timer)
        this.waiters.delete(digest)
        resolve(r)
      })
    })
  }

  close(): void {
    this.sub.unsubscribe()
  }
}
