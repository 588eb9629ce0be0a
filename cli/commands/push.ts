import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../../shared/index.ts'
import { claimsOf } from '../accounts.ts'
import { CliError } from '../cli-error.ts'
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
}

/** Pushes one JWT as nsc does and reads our resolver's verdict; a missing reply is a failure, not an abort. */
async function pushOne(nc: NatsConnection, input: JwtInput, timeoutMs: number): Promise<PushResult> {
  const c = claimsOf(input.jwt)
  const base = { source: input.source, account: typeof c?.sub === 'string' ? c.sub : undefined, name: c?.name }
  try {
    const r = await askResolver(nc, subjects.claimsUpdate, input.jwt, timeoutMs)
    if (r.error !== undefined) {
      return { ...base, outcome: 'failed', code: r.error.code, message: r.error.description, reason: r.error.reason }
    }
    const data = r.data as { code?: number; message?: string } | undefined
    return { ...base, outcome: 'ok', code: data?.code, message: data?.message ?? '' }
  } catch (e) {
    if (!(e instanceof CliError)) throw e
    return { ...base, outcome: 'failed', code: undefined, message: e.message }
  }
}

function summary(results: PushResult[]): string {
  const failed = results.filter((r) => r.outcome === 'failed')
  const shown = results.length > FULL_TABLE_ROWS ? failed : results
  const table = shown.length === 0 ? '' : renderTable(
    ['account', 'name', 'outcome', 'message'],
    shown.map((r) => [r.account ?? r.source, r.name, r.outcome, r.message]),
  )
  const hidden = results.length - shown.length
  return `${table}${results.length - failed.length} pushed, ${failed.length} failed${hidden > 0 ? ` (${hidden} successes not shown; --json lists all)` : ''}\n`
}

/** `push <jwt|file|dir>`: sends account JWTs on `$SYS.REQ.CLAIMS.UPDATE`, 32 at a time. */
export const pushCommand: Command = {
  name: 'push',
  args: '<jwt|file|dir>',
  summary: 'push an account JWT, a file holding one, or every account JWT under a directory (nsc store)',
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const inputs = await readJwtInputs(ctx.positionals[0]!)
    const nc = await ctx.nats()
    const progress = progressBar(ctx.io, inputs.length, 'pushed')
    const results = await mapLimit(inputs, IN_FLIGHT, async (input) => {
      const r = await pushOne(nc, input, ctx.global.timeoutMs)
      progress.tick()
      return r
    })
    progress.done()
    emit(ctx, results, () => summary(results))
    return results.some((r) => r.outcome === 'failed') ? 1 : 0
  },
}
