import type { NatsConnection } from '@nats-io/nats-core'

/** Where the CLI writes: stdout for results, stderr for errors and the progress bar. */
export interface Io {
  out(text: string): void
  err(text: string): void
  /** stderr is a terminal: a progress bar may be drawn there. */
  errIsTTY: boolean
}

/** The flags every command takes, resolved against the environment. */
export interface GlobalOptions {
  servers: string[]
  /** A system-account user's creds file, or undefined to connect without credentials. */
  credsPath: string | undefined
  json: boolean
  timeoutMs: number
}

export type OptionValue = string | boolean | string[] | undefined

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  /** Shown in help: `--dir <dir>`. */
  value?: string
  help: string
}

/** What a command receives. `nats()` connects on first use; the CLI closes the connection at the end. */
export interface RunContext {
  global: GlobalOptions
  io: Io
  positionals: string[]
  options: Record<string, OptionValue>
  nats(): Promise<NatsConnection>
}

export interface Command {
  name: string
  /**
   * Positionals as shown in help, which also say how many it takes: `<account>` one, `[dir]` one or none,
   * `<account...>` one or more. None when absent.
   */
  args?: string
  summary: string
  options?: Record<string, OptionSpec>
  /** Runs the command; resolves with the exit code. Throws CliError for one-line failures. */
  run(ctx: RunContext): Promise<number>
}

/** Prints `data` as indented JSON with --json, otherwise the readable form. */
export function emit(ctx: RunContext, data: unknown, readable: () => string): void {
  ctx.io.out(ctx.global.json ? JSON.stringify(data, null, 2) + '\n' : readable())
}
