import { CliError } from '../cli-error.ts'
import { claimsOf, heldAccount, requireAccountKey } from '../accounts.ts'
import { emit, type Command } from '../context.ts'

/** `get <account>`: the JWT the resolver stores; `--decode` shows its claims instead. */
export const getCommand: Command = {
  name: 'get',
  args: '<account>',
  summary: 'print the JWT the resolver stores for an account (--decode: its claims)',
  options: { decode: { type: 'boolean', help: 'print the decoded claims as JSON instead of the JWT' } },
  async run(ctx) {
    const id = requireAccountKey(ctx.positionals[0]!)
    const held = await heldAccount(await ctx.nats(), id, ctx.global.timeoutMs)
    if (held.state === 'deleted') throw new CliError(`account ${id} was deleted at ${held.deleted?.at ?? 'an unknown time'}`)
    const jwt = held.state === 'stored' ? held.jwt : undefined
    if (jwt === undefined) throw new CliError(`account ${id} not found`)
    const claims = claimsOf(jwt)
    emit(ctx, { account: id, jwt, claims }, () =>
      ctx.options.decode === true ? JSON.stringify(claims, null, 2) + '\n' : jwt + '\n',
    )
    return 0
  },
}
