import { storedAccounts, summarize, type AccountSummary } from '../accounts.ts'
import { emit, type Command } from '../context.ts'
import { formatSeconds, renderTable } from '../table.ts'

/** `list`: every account the resolver lists, with name, iat and exp read from its JWT. */
export const listCommand: Command = {
  name: 'list',
  summary: 'list the stored accounts with name, iat and exp',
  async run(ctx) {
    const nc = await ctx.nats()
    const accounts = (await storedAccounts(nc, ctx.global.timeoutMs)).map(({ account, jwt }): AccountSummary =>
      // Listed a moment ago: gone now means deleted or expired in between.
      jwt === undefined ? { account, name: undefined, iat: 0, exp: 0 } : summarize(account, jwt),
    )
    accounts.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.account.localeCompare(b.account))
    emit(ctx, accounts, () =>
      renderTable(
        ['account', 'name', 'iat', 'exp'],
        accounts.map((a) => [a.account, a.name, formatSeconds(a.iat), formatSeconds(a.exp) ?? 'never']),
      ) + `${accounts.length} accounts\n`,
    )
    return 0
  },
}
