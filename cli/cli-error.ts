/**
 * A failure the CLI explains in one line (unreachable server, bad creds path, timeout, an error reply) and
 * exits 1 on. Anything else reaching the top is a bug, reported by its message only: never a stack.
 */
export class CliError extends Error {
  override readonly name = 'CliError'
}
