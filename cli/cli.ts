import type { NatsConnection } from '@nats-io/nats-core'
import { helpText, parseCommandLine, type CliEnv } from './args.ts'
import { CliError } from './cli-error.ts'
import { bootstrapCommand } from './commands/bootstrap.ts'
import { deleteCommand } from './commands/delete.ts'
import { getCommand } from './commands/get.ts'
import { historyCommand } from './commands/history.ts'
import { lintCommand } from './commands/lint.ts'
import { listCommand } from './commands/list.ts'
import { pushCommand } from './commands/push.ts'
import { resignCommand } from './commands/resign.ts'
import { statusCommand } from './commands/status.ts'
import { connectCli } from './connection.ts'
import type { Command, Io } from './context.ts'

export const COMMANDS: readonly Command[] = [
  statusCommand,
  pushCommand,
  getCommand,
  listCommand,
  historyCommand,
  deleteCommand,
  lintCommand,
  resignCommand,
  bootstrapCommand,
]

/**
 * Runs one command line and resolves with the exit code: 0, or 1 after one line on stderr. Never prints a
 * stack: an unexpected error is reported by its message, like a CliError.
 */
export async function runCli(argv: string[], env: CliEnv, io: Io): Promise<number> {
  let nc: NatsConnection | undefined
  try {
    const parsed = parseCommandLine(argv, COMMANDS, env)
    if (parsed.help) {
      io.out(helpText(COMMANDS, parsed.command))
      return 0
    }
    const { command, global, positionals, options } = parsed
    return await command.run({
      global,
      io,
      positionals,
      options,
      nats: async () => (nc ??= await connectCli(global)),
    })
  } catch (e) {
    const message = e instanceof CliError ? e.message : `unexpected error: ${(e as Error).message ?? String(e)}`
    io.err(`mesh: ${message}\n`)
    return 1
  } finally {
    if (nc !== undefined && !nc.isClosed()) await nc.close()
  }
}
