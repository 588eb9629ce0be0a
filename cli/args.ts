import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { CliError } from './cli-error.ts'
import type { Command, GlobalOptions, OptionSpec, OptionValue } from './context.ts'

/** What the CLI reads from its environment; handed in by main so nothing else touches process.env. */
export interface CliEnv {
  natsUrl: string | undefined
  natsCreds: string | undefined
  cwd: string
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  server: { type: 'string', short: 's', value: 'url', help: 'NATS URL(s), comma-separated (default $NATS_URL or nats://127.0.0.1:4222)' },
  creds: { type: 'string', value: 'file', help: 'system-account user creds (default $NATS_CREDS, or ./.data/sys.creds when present)' },
  json: { type: 'boolean', help: 'print JSON for scripts instead of tables' },
  timeout: { type: 'string', value: 'duration', help: 'how long to wait for a connection or a reply: 5s, 500ms, 1m (default 5s)' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
}

export type ParsedCommandLine =
  | { help: true; command: Command | undefined }
  | { help: false; command: Command; global: GlobalOptions; positionals: string[]; options: Record<string, OptionValue> }

/** `5s`, `500ms`, `1m`, or a bare number of seconds, in milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim())
  if (m === null) throw new CliError(`--timeout ${s}: not a duration (like 5s, 500ms, 1m)`)
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000)
  if (ms < 1 || ms > 3_600_000) throw new CliError(`--timeout ${s}: must be from 1ms to 1h`)
  return Math.round(ms)
}

function globalOptions(values: Record<string, OptionValue>, env: CliEnv): GlobalOptions {
  const url = typeof values.server === 'string' ? values.server : env.natsUrl || 'nats://127.0.0.1:4222'
  const servers = url.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (servers.length === 0) throw new CliError('--server: no NATS URL given')
  const devCreds = join(env.cwd, '.data', 'sys.creds')
  const credsPath = typeof values.creds === 'string' ? values.creds : env.natsCreds || (existsSync(devCreds) ? devCreds : undefined)
  const timeoutMs = typeof values.timeout === 'string' ? parseDuration(values.timeout) : 5000
  return { servers, credsPath, json: values.json === true, timeoutMs }
}

/** Every option any command knows, so one strict parse can run before the command is known. */
function allOptions(commands: readonly Command[]) {
  const out: Record<string, { type: 'string' | 'boolean'; short?: string }> = {}
  for (const [name, o] of [...Object.entries(GLOBAL_OPTIONS), ...commands.flatMap((c) => Object.entries(c.options ?? {}))]) {
    out[name] = o.short === undefined ? { type: o.type } : { type: o.type, short: o.short }
  }
  return out
}

/** `mesh [global options] <command> [args] [options]`; options may come before or after the command. */
export function parseCommandLine(argv: string[], commands: readonly Command[], env: CliEnv): ParsedCommandLine {
  let parsed: { values: Record<string, OptionValue>; positionals: string[] }
  try {
    parsed = parseArgs({ args: argv, options: allOptions(commands), allowPositionals: true, strict: true })
  } catch (e) {
    const unknown = /Unknown option '([^']+)'/.exec((e as Error).message)?.[1]
    const why = unknown !== undefined ? `unknown option ${unknown}` : (e as Error).message.split(/\.\s|\n/)[0]
    throw new CliError(`${why} (mesh --help lists the options)`)
  }
  const [name, ...positionals] = parsed.positionals
  const command = commands.find((c) => c.name === name)
  if (name !== undefined && name !== 'help' && command === undefined) throw new CliError(`unknown command ${name} (mesh --help lists them)`)
  if (command === undefined || parsed.values.help === true) {
    return { help: true, command: command ?? commands.find((c) => c.name === positionals[0]) }
  }
  for (const key of Object.keys(parsed.values)) {
    if (!(key in GLOBAL_OPTIONS) && !(key in (command.options ?? {}))) throw new CliError(`--${key} is not an option of ${command.name}`)
  }
  const { min, max } = arity(command.args ?? '')
  if (positionals.length < min || positionals.length > max) throw new CliError(usage(command))
  return { help: false, command, global: globalOptions(parsed.values, env), positionals, options: parsed.values }
}

/** Most positionals a `<x...>` takes: far more than anyone types, few enough to refuse a runaway glob. */
const MANY = 1000

/** How many positionals `args` asks for: each `<x>` one, each `[x]` one at most, `...` repeats the last. */
export function arity(args: string): { min: number; max: number } {
  let min = 0
  let max = 0
  for (const token of args.split(' ').filter((t) => t !== '')) {
    if (token.startsWith('<')) min++
    max = token.endsWith('...>') || token.endsWith('...]') ? MANY : max + 1
  }
  return { min, max }
}

const usage = (command: Command) => `usage: mesh ${command.name} ${command.args ?? ''}`.trimEnd()

const optionLines = (options: Record<string, OptionSpec>) =>
  Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` <${o.value}>` : ''}`
    return `  ${flag.padEnd(28)} ${o.help}\n`
  })

/** The help text: every command, or one command's arguments and options. */
export function helpText(commands: readonly Command[], command?: Command): string {
  if (command !== undefined) {
    return usage(command) + `\n\n${command.summary}\n` +
      (command.options ? `\noptions:\n${optionLines(command.options).join('')}` : '') +
      `\nglobal options:\n${optionLines(GLOBAL_OPTIONS).join('')}`
  }
  const width = Math.max(...commands.map((c) => `${c.name} ${c.args ?? ''}`.length))
  return 'usage: mesh <command> [arguments] [options]\n\nAdmin CLI of the NATS account resolver mesh.\n\ncommands:\n' +
    commands.map((c) => `  ${`${c.name} ${c.args ?? ''}`.padEnd(width)}  ${c.summary}\n`).join('') +
    `\nglobal options:\n${optionLines(GLOBAL_OPTIONS).join('')}` +
    '\nmesh <command> --help shows a command\'s options. Errors print one line and exit 1.\n'
}
