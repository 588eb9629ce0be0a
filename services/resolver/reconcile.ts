import {
  errors,
  isAccountKey,
  tryPeek,
  subjects,
  type Logger,
  type MeshService,
  type NatsConnection,
  type ReconcileReport,
  type ReconcileServerReport,
} from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'
import { repairAccount, type Outcome } from './reconcile-repair.ts'
import { planAccount, type AccountPlan, type StoreSide } from './reconcile-rule.ts'
import { ServerSurvey, type Inventory } from './reconcile-survey.ts'

/** Accounts compared at once: each costs one ACCOUNTZ fan-out and, to repair, a signer call. */
const IN_FLIGHT = 32
const START_DELAY_MS = 1000
const SIGNER_PROBE_MS = 2000
/** Pushes kept for the signer's return; beyond this the periodic pass still finds what servers applied. */
const MAX_DEFERRED = 10_000
const LISTED_PER_SERVER = 20

export interface ReconcilerDeps {
  nc: NatsConnection
  store: AccountStore
  log: Logger
  /** Between periodic passes; 0 = none (the pass after start, on the signer's return and on demand remain). */
  intervalMs: number
  /** A change of the account is on its way to the servers: their lag behind the store is no drift. */
  busy?: (id: string) => boolean
}

/**
 * Brings the nats-servers back to what the store holds (see reconcile-rule.ts for what is decided). Reads
 * go straight to the servers (ServerSurvey); every repair is a change in the outbox, delivered by the
 * notifier like any other, so nothing older than the stored version is ever sent. Runs after start, when a
 * signer answers again after a push it missed, every `intervalMs`, and on demand (`mesh repair`).
 */
export class Reconciler {
  private readonly survey: ServerSurvey
  private readonly deferred = new Map<string, { jwt: string; iat: number }>()
  private readonly totals = { passes: 0, adopted: 0, reverted: 0, redeleted: 0, pending: 0, unrepairable: 0, failed: 0 }
  private last: ReconcileReport | undefined
  private running: Promise<ReconcileReport> | undefined
  private queued: Promise<ReconcileReport> | undefined
  private timer: NodeJS.Timeout | undefined
  private signerProbe: NodeJS.Timeout | undefined
  private stopped = false

  constructor(private readonly deps: ReconcilerDeps) {
    this.survey = new ServerSurvey(deps.nc)
  }

  /** The pass after a restart, then the periodic ones. */
  start(): void {
    this.schedule(START_DELAY_MS, 'start')
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    clearInterval(this.signerProbe)
    await Promise.allSettled([this.running, this.queued])
  }

  /**
   * A push no signer could validate: servers applied it on their own. Kept until a signer answers, then
   * stored (valid and newer) or undone on the servers.
   */
  missed(id: string, jwt: string): void {
    if (!isAccountKey(id)) return
    const claims = tryPeek(jwt)
    if (claims === undefined) return // not a JWT: servers refuse it too
    const iat = Number(claims.iat ?? 0)
    const known = this.deferred.get(id)
    if (known === undefined && this.deferred.size >= MAX_DEFERRED) {
      this.deps.log.warn({ account: id }, 'too many pushes awaiting a signer: this one is left to the periodic pass')
    } else if (known === undefined || iat >= known.iat) this.deferred.set(id, { jwt, iat })
    this.watchSigner()
  }

  /** Runs a pass; a pass asked for while one runs follows it (one at a time, so repairs never race). */
  run(trigger: string, dryRun = false): Promise<ReconcileReport> {
    if (dryRun) return this.pass(trigger, true)
    if (this.running === undefined) return this.begin(trigger)
    return (this.queued ??= this.running.then(
      () => ((this.queued = undefined), this.begin(trigger)),
      () => ((this.queued = undefined), this.begin(trigger)),
    ))
  }

  /** What the health reply shows: totals since start and the last pass. */
  health(): Record<string, unknown> {
    const l = this.last
    return {
      ...this.totals,
      waitingForSigner: this.signerProbe !== undefined,
      deferred: this.deferred.size,
      last: l && { trigger: l.trigger, at: l.startedAt, accounts: l.accountsChecked, drift: l.drift, durationMs: l.durationMs },
    }
  }

  addEndpoint(service: MeshService): void {
    service.endpoint({
      name: 'reconcile',
      subject: subjects.resolverReconcile,
      description: 'Compares what every nats-server holds with the store and repairs it (dryRun: only reports)',
      handle: async (msg) => {
        let dryRun = false
        if (msg.data.length > 0) {
          let body: unknown
          try {
            body = msg.json()
          } catch {
            throw errors.requestInvalid('body must be empty or JSON like {"dryRun":true}')
          }
          if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.requestInvalid('body must be a JSON object')
          const d = (body as { dryRun?: unknown }).dryRun
          if (d !== undefined && typeof d !== 'boolean') throw errors.requestInvalid('dryRun must be true or false')
          dryRun = d === true
        }
        return JSON.stringify(await this.run('demand', dryRun))
      },
    })
  }

  private begin(trigger: string): Promise<ReconcileReport> {
    const p = this.pass(trigger, false).finally(() => {
      if (this.running === p) this.running = undefined
    })
    this.running = p
    return p
  }

  private schedule(ms: number, trigger: string): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      void this.run(trigger).then(
        () => this.deps.intervalMs > 0 && this.schedule(this.deps.intervalMs, 'periodic'),
        (err: unknown) => {
          this.deps.log.warn({ err: { message: (err as Error).message }, trigger }, 'reconciliation pass failed')
          if (this.deps.intervalMs > 0) this.schedule(this.deps.intervalMs, 'periodic')
        },
      )
    }, ms)
    this.timer.unref()
  }

  /** Polls the signer until it answers, then reconciles what was pushed meanwhile. */
  private watchSigner(): void {
    if (this.signerProbe !== undefined || this.stopped) return
    this.deps.log.warn('no signer answers: pushes meanwhile are checked once one does')
    let probing = false
    this.signerProbe = setInterval(() => {
      if (probing) return
      probing = true
      this.deps.nc.request(subjects.signerHealth, '', { timeout: 1000 }).then(
        () => {
          clearInterval(this.signerProbe)
          this.signerProbe = undefined
          this.deps.log.info('a signer answers again: reconciling')
          void this.run('signer-returned').catch((err: unknown) => this.deps.log.warn({ err: { message: (err as Error).message } }, 'reconciliation pass failed'))
        },
        () => (probing = false), // still no signer
      )
    }, SIGNER_PROBE_MS)
    this.signerProbe.unref()
  }

  private async pass(trigger: string, dryRun: boolean): Promise<ReconcileReport> {
    const started = Date.now()
    const servers = await this.survey.servers()
    const inv = await this.survey.inventories(servers)
    const deferred = new Map(dryRun ? [] : this.deferred)
    if (!dryRun) this.deferred.clear()
    const ids = new Set<string>(deferred.keys())
    for (const i of inv) for (const set of [i.loaded, i.files]) for (const id of set) ids.add(id)
    const report = emptyReport(trigger, dryRun, started, inv)
    const byName = new Map(report.servers.map((s) => [s.name, s]))
    const queue = [...ids].sort()
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined && !this.stopped; id = queue.shift()) {
        const outcome = await this.account(id, inv, deferred.get(id), dryRun, report, byName)
        if (outcome === 'pending' && deferred.has(id) && !this.deferred.has(id)) this.deferred.set(id, deferred.get(id)!)
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
    report.durationMs = Date.now() - started
    if (!dryRun) this.record(report)
    return report
  }

  private async account(
    id: string,
    inv: Inventory[],
    deferred: { jwt: string; iat: number } | undefined,
    dryRun: boolean,
    report: ReconcileReport,
    byName: Map<string, ReconcileServerReport>,
  ): Promise<Outcome> {
    report.accountsChecked++
    const side = await this.sideOf(id)
    let plan = planAccount(side, await this.survey.held(id, inv), deferred)
    if (plan.action === 'revert' || plan.action === 'redelete') {
      // Servers lag the store while a change is delivered; and they may have caught up since the survey:
      // look again before sending anything, so a pass never duplicates an ordinary delivery.
      if (this.deps.busy?.(id) === true) return 'none'
      if (!dryRun) plan = planAccount(side, await this.survey.held(id, inv), deferred)
    }
    if (plan.drifting.length > 0) report.drift++
    const outcome = dryRun || plan.action === 'none' ? 'none' : await this.repair(id, side, plan)
    if (outcome !== 'none') report[outcome]++
    for (const name of plan.drifting) {
      const s = byName.get(name)!
      s.drift++
      if (s.accounts.length < LISTED_PER_SERVER) s.accounts.push(id)
      if (outcome === 'adopted' || outcome === 'reverted' || outcome === 'redeleted') s[outcome]++
    }
    return outcome
  }

  private async sideOf(id: string): Promise<StoreSide> {
    const stored = await this.deps.store.get(id)
    if (stored !== undefined) return { kind: 'stored', jwt: stored.jwt, iat: stored.iat }
    const tomb = await this.deps.store.tombstoneOf(id)
    return tomb === undefined ? { kind: 'unknown' } : { kind: 'deleted', iat: tomb.iat }
  }

  private async repair(id: string, side: StoreSide, plan: AccountPlan): Promise<Outcome> {
    const { nc, store, log } = this.deps
    return repairAccount({ nc, store, log: log.child({ account: id, drifting: plan.drifting }), signerMissing: () => this.watchSigner() }, id, side, plan)
  }

  private record(r: ReconcileReport): void {
    this.last = r
    this.totals.passes++
    for (const k of ['adopted', 'reverted', 'redeleted', 'pending', 'unrepairable', 'failed'] as const) this.totals[k] += r[k]
    const level = r.drift > 0 ? 'info' : 'debug'
    this.deps.log[level](
      { trigger: r.trigger, accounts: r.accountsChecked, drift: r.drift, adopted: r.adopted, reverted: r.reverted, redeleted: r.redeleted, pending: r.pending, unrepairable: r.unrepairable, failed: r.failed, durationMs: r.durationMs, servers: r.servers.map((s) => `${s.name}:${s.drift}`) },
      'reconciliation pass',
    )
  }
}

function emptyReport(trigger: string, dryRun: boolean, started: number, inv: Inventory[]): ReconcileReport {
  return {
    trigger,
    dryRun,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    accountsChecked: 0,
    drift: 0,
    adopted: 0,
    reverted: 0,
    redeleted: 0,
    pending: 0,
    unrepairable: 0,
    failed: 0,
    servers: inv.map(({ server, loaded, files }) => ({
      id: server.id,
      name: server.name,
      loaded: loaded.size,
      files: files.size,
      drift: 0,
      adopted: 0,
      reverted: 0,
      redeleted: 0,
      accounts: [],
    })),
  }
}
