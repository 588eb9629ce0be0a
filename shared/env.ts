import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { AppError, errors } from './errors.ts'

/** The process environment, or a literal in tests. */
export type Env = Readonly<Record<string, string | undefined>>

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/**
 * Reads variables and collects every problem instead of stopping at the first, so an operator fixes a
 * broken deployment in one go. Call `assertValid()` once everything has been read.
 */
export interface EnvReader {
  string(name: string, fallback: string): string
  optionalString(name: string): string | undefined
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T
  integer(name: string, fallback: number, min: number, max: number): number
  /** A path to a directory or file that need not exist yet. */
  path(name: string, fallback: string): string
  /** The contents of a file that must exist and be readable. */
  file(name: string): { path: string; text: string } | undefined
  optionalFile(name: string): { path: string; text: string } | undefined
  /** Records a problem found by a caller's own check. */
  problem(name: string, what: string): void
  assertValid(): void
}

export function envReader(env: Env): EnvReader {
  const problems: string[] = []
  const value = (name: string) => {
    const v = env[name]?.trim()
    return v === undefined || v === '' ? undefined : v
  }
  const readFile = (name: string, path: string) => {
    try {
      if (!statSync(path).isFile()) {
        problems.push(`${name}: ${path} is not a file`)
        return undefined
      }
      return { path: resolve(path), text: readFileSync(path, 'utf8') }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      problems.push(`${name}: cannot read ${path} (${code === 'ENOENT' ? 'no such file' : code ?? 'unreadable'})`)
      return undefined
    }
  }
  return {
    string: (name, fallback) => value(name) ?? fallback,
    optionalString: (name) => value(name),
    oneOf(name, allowed, fallback) {
      const v = value(name)
      if (v === undefined) return fallback
      if ((allowed as readonly string[]).includes(v)) return v as (typeof allowed)[number]
      problems.push(`${name}: "${v}" is not one of ${allowed.join(', ')}`)
      return fallback
    },
    integer(name, fallback, min, max) {
      const v = value(name)
      if (v === undefined) return fallback
      const n = Number(v)
      if (!Number.isInteger(n) || n < min || n > max) {
        problems.push(`${name}: "${v}" is not a whole number from ${min} to ${max}`)
        return fallback
      }
      return n
    },
    path: (name, fallback) => resolve(value(name) ?? fallback),
    file(name) {
      const path = value(name)
      if (path === undefined) {
        problems.push(`${name}: required, not set`)
        return undefined
      }
      return readFile(name, path)
    },
    optionalFile(name) {
      const path = value(name)
      return path === undefined ? undefined : readFile(name, path)
    },
    problem: (name, what) => void problems.push(`${name}: ${what}`),
    assertValid() {
      if (problems.length > 0) throw errors.config(problems)
    },
  }
}

/** Freezes a configuration object and everything in it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

export function isConfigError(e: unknown): e is AppError {
  return e instanceof AppError && e.code === 'CONFIG_INVALID'
}
