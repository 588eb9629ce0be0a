import type { NatsConnection } from '@nats-io/nats-core'
import { subjects, type HistoryPage, type HistoryVersion } from '../../shared/index.ts'
import { CliError } from '../cli-error.ts'
import { requireAccountKey } from '../accounts.ts'
import { emit, type Command } from '../context.ts'
import { request } from '../requests.ts'
import { formatSeconds, renderTable } from '../table.ts'

/** Every page of `mesh.resolver.history.<id>`, asking `{"after": <last seq>}` while `more` says so. */
async function allVersions(nc: NatsConnection, id: string, timeoutMs: number): Promise<HistoryVersion[]> {
  const out: HistoryVersion[] = []
  for (;;) {
    const body = out.length === 0 ? '' : JSON.stringify({ after: out.at(-1)!.seq })
    const page = (await request(nc, subjects.resolverHistory(id), body, timeoutMs)).json<HistoryPage>()
    if (!Array.isArray(page.versions)) throw new CliError('the resolver sent a history page without versions')
    out.push(...page.versions)
    if (!page.more || page.versions.length === 0) return out
  }
}

/** `history <account>`: every version the resolver accepted for an account, deletions included. */
export const historyCommand: Command = {
  name: 'history',
  args: '<account>',
  summary: 'every accepted version of an account, oldest first',
  async run(ctx) {
    const id = requireAccountKey(ctx.positionals[0]!)
    const versions = await allVersions(await ctx.nats(), id, ctx.global.timeoutMs)
    if (versions.length === 0) throw new CliError(`no history for account ${id}`)
    emit(ctx, { account: id, versions }, () =>
      renderTable(
        ['seq', 'kind', 'iat', 'at', 'via'],
        versions.map((v) => [v.seq, v.kind, formatSeconds(v.iat), v.at, v.via]),
      ),
    )
    return 0
  },
}
