import { MESH_SERVICES, nowSeconds, subjects } from '../../shared/index.ts'
import { listIds, requireAccountKey } from '../accounts.ts'
import { lintAccount } from '../lint-rules.ts'
import { operatorTrust } from '../operator-trust.ts'
import { emit, type Command } from '../context.ts'
import {
  accountStatuses,
  gatherServers,
  gatherServices,
  serviceHealth,
  type AccountStatus,
  type HealthStatus,
  type HeldVersion,
  type ServerStatus,
  type ServiceInstance,
} from '../mesh-status.ts'
import { driftSection, reconcile } from '../reconcile.ts'
import { formatSeconds, section } from '../table.ts'
import { CliError } from '../cli-error.ts'
import type { ReconcileReport } from '../../shared/index.ts'

const DEFAULT_ACCOUNTS = 20
/** As `mesh lint`'s default: accounts expiring within 14 days. */
const LINT_EXPIRING_SECONDS = 14 * 86_400
/** The dry-run pass reads every loaded account from every server. */
const DRIFT_TIMEOUT_MS = 60_000

interface Status {
  services: ServiceInstance[]
  health: HealthStatus[]
  servers: ServerStatus[]
  accounts: { total: number | undefined; shown: AccountStatus[]; error?: string }
  /** Why the shown accounts were not linted (no operator JWT from the signer), if they were not. */
  lint?: { error: string }
  /** What each server holds that the store does not (a dry-run reconciliation pass over every loaded account). */
  drift: ReconcileReport | { error: string }
  /** Why the exit code is 1: a mesh service missing or unhealthy, no nats-server answering, a server drifting. */
  problems: string[]
}

const healthText = (h: HealthStatus | undefined) => (h === undefined ? undefined : h.ok === undefined ? 'no reply' : h.ok ? 'ok' : 'unhealthy')
const ms = (ns: number) => `${(ns / 1e6).toFixed(2)} ms`
const held = (v: HeldVersion) => (v.state === 'other' ? `other (iat ${v.iat ?? '?'})` : v.state)

function render(s: Status): string {
  const health = new Map(s.health.map((h) => [h.service, h]))
  const parts = [
    section('services', ['service', 'id', 'version', 'started', 'health'],
      s.services.map((x) => [x.name, x.id, x.version, x.started, healthText(health.get(x.name))])),
    section('endpoints', ['service', 'endpoint', 'subject', 'requests', 'errors', 'average', 'last error'],
      s.services.flatMap((x) => x.endpoints.map((e) => [x.name, e.name, e.subject, e.requests, e.errors, ms(e.averageNs), e.lastError]))),
    section('nats-servers', ['name', 'id', 'version', 'cluster', 'connections'],
      s.servers.map((x) => [x.name, x.id, x.version, x.cluster, x.connections])),
  ]
  const a = s.accounts
  const title = a.error !== undefined ? `accounts: ${a.error}`
    : a.total !== undefined && a.total > a.shown.length ? `accounts (${a.shown.length} of ${a.total}; --all shows every one)` : 'accounts'
  parts.push(section(title, ['account', 'name', 'stored iat', ...s.servers.map((x) => x.name)],
    a.shown.map((x) => [x.account, x.name, x.iat === undefined ? 'not stored' : formatSeconds(x.iat), ...x.servers.map(held)])))
  const findings = a.shown.flatMap((x) => x.findings)
  parts.push(s.lint !== undefined ? `lint: ${s.lint.error}\n` : section('lint (of the accounts shown; `mesh lint` checks every one)', ['account', 'name', 'rule', 'detail'],
    findings.map((f) => [f.account, f.name, f.rule, f.detail])))
  parts.push('error' in s.drift ? `drift: ${s.drift.error}\n` : driftSection(s.drift, 'drift (what servers hold that the store does not)'))
  if (s.problems.length > 0) parts.push(`problems\n${s.problems.map((p) => `- ${p}\n`).join('')}`)
  return parts.join('\n')
}

function problemsOf(health: HealthStatus[], servers: ServerStatus[], drift: Status['drift']): string[] {
  const out = health.filter((h) => h.ok !== true).map((h) => `${h.service}: ${h.ok === false ? 'unhealthy' : h.error ?? 'no health reply'}`)
  if (servers.length === 0) out.push('no nats-server answered $SYS.REQ.SERVER.PING (are these system-account creds?)')
  if (!('error' in drift)) {
    for (const s of drift.servers) if (s.drift > 0) out.push(`${s.name} holds ${s.drift} account version(s) the store does not (\`mesh repair\` fixes it)`)
  }
  return out
}

/**
 * `status`: services and their endpoint stats, health, the nats-servers, which account versions they hold and
 * their drift from the store. Exit 1 while a service is missing or unhealthy or any server drifts.
 */
export const statusCommand: Command = {
  name: 'status',
  summary: 'services, versions, endpoint stats, health, nats-servers and the account versions they hold',
  options: {
    account: { type: 'string', value: 'id', help: 'show only this account' },
    all: { type: 'boolean', help: `show every stored account (default: the first ${DEFAULT_ACCOUNTS})` },
  },
  async run(ctx) {
    const nc = await ctx.nats()
    const t = ctx.global.timeoutMs
    const only = typeof ctx.options.account === 'string' ? requireAccountKey(ctx.options.account) : undefined
    const [services, servers, health, ids, drift, trust] = await Promise.all([
      gatherServices(nc, t),
      gatherServers(nc, t),
      Promise.all(MESH_SERVICES.map((name) => serviceHealth(nc, name, subjects.health(name), t))),
      only !== undefined ? Promise.resolve([only]) : listIds(nc, t).then((x) => x.sort(), (e: Error) => e),
      reconcile(nc, true, Math.max(t, DRIFT_TIMEOUT_MS)).catch((e: unknown) => {
        if (e instanceof CliError) return { error: e.message }
        throw e
      }),
      operatorTrust(ctx.nats, undefined, t).catch((e: unknown) => {
        if (e instanceof CliError) return new Error(e.message)
        throw e
      }),
    ])
    const now = nowSeconds()
    const lint = trust instanceof Error ? undefined : (id: string, jwt: string) => lintAccount(id, jwt, { trust, now, expiringWithinSeconds: LINT_EXPIRING_SECONDS })
    const accounts: Status['accounts'] = ids instanceof Error
      ? { total: undefined, shown: [], error: ids.message }
      : {
          total: ids.length,
          shown: await accountStatuses(nc, ctx.options.all === true ? ids : ids.slice(0, DEFAULT_ACCOUNTS), servers, t, lint),
        }
    const status: Status = { services, health, servers, accounts, drift, problems: problemsOf(health, servers, drift) }
    if (trust instanceof Error) status.lint = { error: trust.message }
    emit(ctx, status, () => render(status))
    return status.problems.length > 0 ? 1 : 0
  },
}
