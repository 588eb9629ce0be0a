import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../../shared/index.ts'
import { claimsOf } from '../accounts.ts'
import { CliError } from '../cli-error.ts'
import { parseDuration } from '../args.ts'
import { EnforcementReports, enforcementLines, enforcementResult, type EnforcementResult } from '../enforcement-reports.ts'
import { emit, type Command } from '../context.ts'
import { readJwtInputs, type JwtInput } from '../jwt-input.ts'
import { progressBar } from '../progress.ts'
import { askResolver, mapLimit } from '../requests.ts'
import { renderTable } from '../table.ts'

const IN_FLIGHT = 32
// Above this many results the readable summary lists only the failures (--json always has every one).
const FULL_TABLE_ROWS = 50

export interface PushResult {
  source: string
  account: string | undefined
  name: string | undefined
  outcome: 'ok' | 'failed'
  code: number | undefined
  message: string
  reason?: string
  /** Only for a push that revokes users or lowers limits: what each server cut off (the notifier's report). */
  enforcement?: EnforcementResult
}

/** Default wait for an enforcement report: the notifier's default grace period (5 s) and a margin. */
const ENFORCE_WAIT_MS = 15_000

/** Pushes one JWT as nsc does and reads our resolver's verdict; a missing reply is a failure, not an abort. */
async function pushOne(
  nc: NatsConnection,
  input: JwtInput,
  timeoutMs: number,
  reports: EnforcementReports,
  waitMs: number,
): Promise<PushResult> {
  const c = claimsOf(input.jwt)
  const base = { source: input.source, account: typeof c?.sub === 'string' ? c.sub : undefined, name: c?.name }
  try {
    const r = await askResolver(nc, subjects.claimsUpdate, input.jwt, timeoutMs)
    if (r.error !== undefined) {
      return { ...base, outcome: 'failed', code: r.error.code, message: r.error.description, reason: r.error.reason }
    }
    const data = r.data as { code?: number; message?: string; enforcing?: unknown } | undefined
    const ok: PushResult = { ...base, outcome: 'ok', code: data?.code, message: data?.message ?? '' }
    if (typeof data?.enforcing !== 'string') return ok
    const enforcement = enforcementResult(await reports.wait(data.enforcing, waitMs))
    return { ...ok, enforcement, ...(enforcement.outcome === 'in-force' ? {} : { outcome: 'failed' as const }) }
  } catch (e) {
    if (!(e instanceof CliError)) throw e
    return { ...base, outcome: 'failed', code: undefined, message: e.message }
  }
}

function summary(results: PushResult[], waitMs: number): string {
  const failed = results.filter((r) => r.outcome === 'failed')
  const shown = results.length > FULL_TABLE_ROWS ? failed : results
  const table = shown.length === 0 ? '' : renderTable(
    ['account', 'name', 'outcome', 'message'],
    shown.map((r) => [r.account ?? r.source, r.name, r.outcome, r.message]),
  )
  const hidden = results.length - shown.length
  const enforced = results.flatMap((r) => (r.enforcement ? enforcementLines(r.name ?? r.account ?? r.source, r.enforcement, waitMs) : []))
  const enforcedText = enforced.map((l) => `${l}\n`).join('')
  return `${table}${enforcedText}${results.length - failed.length} pushed, ${failed.length} failed${hidden > 0 ? ` (${hidden} successes not shown; --json lists all)` : ''}\n`
}

function parseEnforceWait(s: string): number {
  try {
    const ms = parseDuration(s)
    if (ms > 0 && ms <= 600_000) return ms
  } catch {
    // reworded below for this option
  }
  throw new CliError(`--enforce-wait ${s.slice(0, 40)}: not a duration between 1ms and 10m (like 15s)`)
}

/** `push <jwt|file|dir>`: sends account JWTs on `$SYS.REQ.CLAIMS.UPDATE`, 32 at a time. */
export const pushCommand: Command = {
  name: 'push',
  args: '<jwt|file|dir>',
  summary: 'push an account JWT, a file holding one, or every account JWT under a directory (nsc store)',
  options: {
    'enforce-wait': {
      type: 'string',
      value: 'duration',
      help: 'how long to wait for the servers to cut off revoked users (default 15s)',
    },
  },
  async run(ctx) {
    const waitOpt = ctx.options['enforce-wait']
    const waitMs = typeof waitOpt === 'string' ? parseEnforceWait(waitOpt) : ENFORCE_WAIT_MS
    const inputs = await readJwtInputs(ctx.positionals[0]!)
    const nc = await ctx.nats()
    // One subscription for every push, registered before the first: reports of revocations come from here.
    const reports = new EnforcementReports(nc)
    await nc.flush()
    const progress = progressBar(ctx.io, inputs.length, 'pushed')
    const results = await mapLimit(inputs, IN_FLIGHT, async (input) => {
      const r = await pushOne(nc, input, ctx.global.timeoutMs, reports, waitMs)
      progress.tick()
      return r
    }).finally(() => reports.close())
    progress.done()
    emit(ctx, results, () => summary(results, waitMs))
    return results.some((r) => r.outcome === 'failed') ? 1 : 0
  },
}
