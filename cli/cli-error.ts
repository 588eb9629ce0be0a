import { readFile } from 'node:fs/promises'

/**
 * A failure the CLI explains in one line (unreachable server, bad creds path, timeout, an error reply) and
 * exits 1 on. Anything else reaching the top is a bug, reported by its message only: never a stack.
 */
export class CliError extends Error {
  override readonly name = 'CliError'
}

/** The text of a file the user named; the error names `what` and the path, never the contents. */
export async function readNamedFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new CliError(`cannot read ${what} ${path} (${code === 'ENOENT' ? 'no such file' : code ?? 'unreadable'})`)
  }
}
