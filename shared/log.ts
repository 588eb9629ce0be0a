import { pino, type Logger } from 'pino'
import type { LogLevel } from './env.ts'

export type { Logger }

/** Paths whose values never reach a log line, whatever a caller passes in. */
const REDACT = ['seed', 'creds', '*.seed', '*.creds', 'config.nats.creds', 'nats.creds', 'token', '*.token']

/** The root logger of a service: JSON lines on stdout, with the service name on every line. */
export function createLogger(level: LogLevel, svc: string): Logger {
  return pino({ level, base: { svc }, redact: { paths: REDACT, censor: '[redacted]' } })
}
