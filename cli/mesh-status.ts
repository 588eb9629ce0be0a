import type { LintFinding } from './lint-rules.ts'
import type { NatsConnection } from '@nats-io/nats-core'
import { jsonOf, subjects, type HealthReport } from '../shared/index.ts'
import { claimsOf, storedJwt } from './accounts.ts'
import { CliError } from './cli-error.ts'
import { gatherReplies, mapLimit, request } from './requests.ts'

export interface EndpointStatus {
  name: string
  subject: string
  requests: number
  errors: number
  /** Nanoseconds, as `$SRV.STATS` reports them. */
  averageNs: number
  lastError: string
}

/** One running instance, from its `$SRV.INFO` and `$SRV.STATS` replies. */
export interface ServiceInstance {
  name: string
  id: string
  version: string
  started: string | undefined
  endpoints: EndpointStatus[]
}

/** A service's health reply (any one instance answers); `ok` undefined when none answered. */
export interface HealthStatus {
  service: string
  ok: boolean | undefined
  error?: string
  report?: HealthReport
}

export interface ServerStatus {
  name: string
  id: string
  version: string
  cluster: string | undefined
  connections: number | undefined
}

export type HeldState = 'current' | 'other' | 'not loaded' | 'no reply'

/** What one nats-server holds of an account, compared with the resolver's stored version. */
export interface HeldVersion {
  server: string
  state: HeldState
  /** The `iat` of the version the server holds, when it holds one. */
  iat?: number
}

export interface AccountStatus {
  account: string
  name: string | undefined
  /** The stored version's `iat`; undefined when the resolver does not serve the account. */
  iat: number | undefined
  servers: HeldVersion[]
  /** What `mesh lint` reports for the stored version. */
  findings: LintFinding[]
}

type MicroReply = { type?: string; name: string; id: string; version: string; started?: string; endpoints?: Record<string, unknown>[] | null }

/** As `nats micro ls` gathers: up to `timeoutMs` for the first reply, then until 300 ms pass without one. */
const likeNatsCli = (timeoutMs: number) => ({ strategy: 'stall', maxWait: timeoutMs, stall: 300 }) as const

/** Every instance answering `$SRV.INFO` or `$SRV.STATS`. */
async function microReplies(nc: NatsConnection, subject: string, timeoutMs: number): Promise<MicroReply[]> {
  // a reply that is not JSON is skipped, as natscli skips invalid ones
  const replies = (await gatherReplies(nc, subject, '', likeNatsCli(timeoutMs))).map((m) => jsonOf<MicroReply>(m))
  return replies.filter((r): r is MicroReply => typeof r?.id === 'string' && typeof r.name === 'string')
}

function endpointStatus(e: Record<string, unknown>): EndpointStatus {
  return {
    name: String(e.name),
    subject: String(e.subject),
    requests: Number(e.num_requests ?? 0),
    errors: Number(e.num_errors ?? 0),
    averageNs: Number(e.average_processing_time ?? 0),
    lastError: String(e.last_error ?? ''),
  }
}

/** Every instance answering `$SRV.INFO` and `$SRV.STATS`, gathered as `nats micro ls` does. */
export async function gatherServices(nc: NatsConnection, timeoutMs: number): Promise<ServiceInstance[]> {
  const [infos, stats] = await Promise.all([microReplies(nc, subjects.micro('INFO'), timeoutMs), microReplies(nc, subjects.micro('STATS'), timeoutMs)])
  const statsById = new Map(stats.map((s) => [s.id, s]))
  return infos
    .map((info) => {
      const st = statsById.get(info.id)
      const endpoints = (st?.endpoints ?? info.endpoints ?? []).map(endpointStatus)
      return { name: info.name, id: info.id, version: info.version, started: st?.started, endpoints }
    })
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
}

export async function serviceHealth(nc: NatsConnection, service: string, subject: string, timeoutMs: number): Promise<HealthStatus> {
  try {
    const report = (await request(nc, subject, '', timeoutMs)).json<HealthReport>()
    return { service, ok: report.ok === true, report }
  } catch (e) {
    if (!(e instanceof CliError) && !(e instanceof SyntaxError)) throw e
    return { service, ok: undefined, error: e.message }
  }
}

/** Every nats-server sharing the system account, from `$SYS.REQ.SERVER.PING`. */
export async function gatherServers(nc: NatsConnection, timeoutMs: number): Promise<ServerStatus[]> {
  type Ping = { server?: { name: string; id: string; ver: string; cluster?: string }; statsz?: { connections?: number } }
  const out: ServerStatus[] = []
  for (const m of await gatherReplies(nc, subjects.serverPing, '', likeNatsCli(timeoutMs))) {
    const r = jsonOf<Ping>(m)
    if (r?.server?.id === undefined) continue
    out.push({ name: r.server.name, id: r.server.id, version: r.server.ver, cluster: r.server.cluster, connections: r.statsz?.connections })
  }
  return out.sort((a, b) => a.name.localeCompare(b.name))
}

type Accountz = { server?: { name: string; id: string }; data?: { account_detail?: { jwt?: string } } }

/** ACCOUNTZ from every server (protocol.md §8): which version of `id` each has applied. */
async function heldVersions(nc: NatsConnection, id: string, stored: string | undefined, servers: ServerStatus[], timeoutMs: number): Promise<HeldVersion[]> {
  const replies = await gatherReplies(nc, subjects.accountz, JSON.stringify({ account: id }), {
    ...likeNatsCli(timeoutMs),
    until: (got) => got.length >= servers.length,
  })
  const byId = new Map<string, string | undefined>()
  for (const m of replies) {
    const r = jsonOf<Accountz>(m)
    if (r?.server?.id !== undefined) byId.set(r.server.id, r.data?.account_detail?.jwt)
  }
  return servers.map((s): HeldVersion => {
    if (!byId.has(s.id)) return { server: s.name, state: 'no reply' }
    const held = byId.get(s.id)
    if (held === undefined || held === '') return { server: s.name, state: 'not loaded' }
    if (held === stored) return { server: s.name, state: 'current', iat: claimsOf(held)?.iat }
    return { server: s.name, state: 'other', iat: claimsOf(held)?.iat }
  })
}

const ACCOUNTS_IN_FLIGHT = 8

/** For each account, the stored version beside what each server holds (ACCOUNTZ). */
export async function accountStatuses(
  nc: NatsConnection,
  ids: string[],
  servers: ServerStatus[],
  timeoutMs: number,
  lint: (id: string, jwt: string) => LintFinding[] = () => [],
): Promise<AccountStatus[]> {
  return mapLimit(ids, ACCOUNTS_IN_FLIGHT, async (id) => {
    const stored = await storedJwt(nc, id, timeoutMs)
    const c = stored === undefined ? undefined : claimsOf(stored)
    const findings = stored === undefined ? [] : lint(id, stored)
    return { account: id, name: c?.name, iat: c?.iat, servers: await heldVersions(nc, id, stored, servers, timeoutMs), findings }
  })
}
