import { nowSeconds } from '../../shared/index.ts'
import { storedAccounts } from '../accounts.ts'
import { CliError } from '../cli-error.ts'
import { emit, type Command } from '../context.ts'
import { lintAccount, type LintFinding } from '../lint-rules.ts'
import { operatorTrust } from '../operator-trust.ts'
import { renderTable } from '../table.ts'

const DAY = 86_400

function days(v: unknown): number {
  if (v === undefined) return 14
  const n = Number(v)
  if (typeof v !== 'string' || !/^\d+$/.test(v) || n > 3650) throw new CliError(`--days ${String(v)}: a whole number of days from 0 to 3650`)
  return n
}

/** `lint`: what will break soon in the stored accounts, judged against the operator the signer trusts. */
export const lintCommand: Command = {
  name: 'lint',
  summary: 'report stored accounts that expire soon, are signed by a key the operator dropped, or need care',
  options: {
    days: { type: 'string', value: 'n', help: 'report accounts expiring within n days (default 14)' },
    operator: { type: 'string', value: 'file', help: "judge against this operator JWT instead of the signer's" },
  },
  async run(ctx) {
    const within = days(ctx.options.days) * DAY
    const file = typeof ctx.options.operator === 'string' ? ctx.options.operator : undefined
    const trust = await operatorTrust(ctx.nats, file, ctx.global.timeoutMs)
    const nc = await ctx.nats()
    const accounts = await storedAccounts(nc, ctx.global.timeoutMs)
    const now = nowSeconds()
    const findings: LintFinding[] = accounts.flatMap(({ account, jwt }) =>
      jwt === undefined ? [] : lintAccount(account, jwt, { trust, now, expiringWithinSeconds: within }),
    )
    const flagged = new Set(findings.map((f) => f.account)).size
    emit(ctx, { checked: accounts.length, findings }, () =>
      (findings.length === 0 ? '' : renderTable(['account', 'name', 'rule', 'detail'], findings.map((f) => [f.account, f.name, f.rule, f.detail]))) +
      `${accounts.length} accounts checked, ${findings.length} findings in ${flagged} accounts\n`,
    )
    return findings.length === 0 ? 0 : 1
  },
}
