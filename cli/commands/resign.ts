import type { NatsConnection } from '@nats-io/nats-core'
import { nowSeconds, subjects } from '../../shared/index.ts'
import { claimsOf, storedAccounts } from '../accounts.ts'
import { CliError } from '../cli-error.ts'
import { emit, type Command } from '../context.ts'
import { lintAccount } from '../lint-rules.ts'
import { operatorTrust } from '../operator-trust.ts'
import { askResolver, request } from '../requests.ts'
import { renderTable } from '../table.ts'

interface ResignResult {
  account: string
  name: string | undefined
  issuer: string
  outcome: 'would re-sign' | 're-signed' | 'failed'
  message: string
}

/** Has the signer re-sign one stored JWT, then pushes the result as any push, so the resolver validates it. */
async function resignOne(nc: NatsConnection, jwt: string, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
  try {
    const signed = (await request(nc, subjects.signerResign, jwt, timeoutMs)).json<{ jwt: string }>().jwt
    const r = await askResolver(nc, subjects.claimsUpdate, signed, timeoutMs)
    if (r.error !== undefined) return { ok: false, message: r.error.description }
    return { ok: true, message: (r.data as { message?: string } | undefined)?.message ?? '' }
  } catch (e) {
    if (!(e instanceof CliError)) throw e
    return { ok: false, message: e.message }
  }
}

/**
 * `resign`: re-signs (managed mode) every stored account whose issuer the operator does not trust, and pushes
 * it. With --operator, judged against the operator JWT about to be deployed: re-signed before the servers
 * take it, those accounts never stop working. A dry run unless --yes.
 */
export const resignCommand: Command = {
  name: 'resign',
  summary: 'managed mode: re-sign accounts signed by a key the operator dropped (dry run unless --yes)',
  options: {
    yes: { type: 'boolean', help: 're-sign and push (without it, only list what would be re-signed)' },
    operator: { type: 'string', value: 'file', help: "judge against this operator JWT (the one about to be deployed) instead of the signer's" },
  },
  async run(ctx) {
    const file = typeof ctx.options.operator === 'string' ? ctx.options.operator : undefined
    const trust = await operatorTrust(ctx.nats, file, ctx.global.timeoutMs)
    const nc = await ctx.nats()
    const now = nowSeconds()
    const untrusted = (await storedAccounts(nc, ctx.global.timeoutMs)).filter(
      (a): a is { account: string; jwt: string } =>
        a.jwt !== undefined && lintAccount(a.account, a.jwt, { trust, now, expiringWithinSeconds: 0 }).some((f) => f.rule === 'untrusted-issuer'),
    )
    const results: ResignResult[] = []
    for (const { account, jwt } of untrusted) {
      const c = claimsOf(jwt)
      const [name, issuer] = [c?.name, String(c?.iss)]
      if (ctx.options.yes !== true) {
        results.push({ account, name, issuer, outcome: 'would re-sign', message: '' })
        continue
      }
      const r = await resignOne(nc, jwt, ctx.global.timeoutMs)
      results.push({ account, name, issuer, outcome: r.ok ? 're-signed' : 'failed', message: r.message })
    }
    const failed = results.filter((r) => r.outcome === 'failed').length
    emit(ctx, results, () =>
      (results.length === 0 ? '' : renderTable(['account', 'name', 'signed by', 'outcome', 'message'], results.map((r) => [r.account, r.name, r.issuer, r.outcome, r.message]))) +
      (ctx.options.yes === true
        ? `${results.length - failed} re-signed, ${failed} failed\n`
        : `${results.length} accounts would be re-signed; run again with --yes to do it\n`),
    )
    return failed === 0 ? 0 : 1
  },
}
