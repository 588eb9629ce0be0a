import type { NatsConnection } from '@nats-io/nats-core'
import { subjects, type ReconcileReport } from '../shared/index.ts'
import { request } from './requests.ts'
import { section } from './table.ts'

/** A pass compares every account some server has loaded: allow it far longer than one reply. */
export const PASS_TIMEOUT_MS = 300_000

/** Asks the resolver for a reconciliation pass (`mesh.resolver.reconcile`); with `dryRun` it only reports. */
export async function reconcile(nc: NatsConnection, dryRun: boolean, timeoutMs: number): Promise<ReconcileReport> {
  const m = await request(nc, subjects.resolverReconcile, JSON.stringify({ dryRun }), timeoutMs)
  return m.json<ReconcileReport>()
}

/** The per-server table both `mesh status` and `mesh repair` print. */
export function driftSection(r: ReconcileReport, title: string): string {
  return section(
    title,
    ['server', 'loaded', 'files', 'drift', 'adopted', 'reverted', 'redeleted', 'drifting accounts'],
    r.servers.map((s) => [s.name, s.loaded, s.files, s.drift, s.adopted, s.reverted, s.redeleted, s.accounts.join(' ') || undefined]),
  )
}
