import { isConfigError, LOG_LEVELS, type EnvReader, type LogLevel } from './env.ts'
import { createLogger } from './log.ts'

export const readLogLevel = (r: EnvReader): LogLevel => r.oneOf('LOG_LEVEL', LOG_LEVELS, 'info')

/**
 * Runs a service's main. A configuration problem becomes one fatal log line naming it and exit code 2,
 * not a stack trace; anything else unexpected is logged with its stack and exits 1.
 */
export function startup(svc: string, main: () => Promise<void>): void {
  main().then(
    // Stopped and logged: exit even if a handle outlives the connection (nats.js retrying a host whose DNS
    // lookup hangs, seen in compose when a node goes away during the stop), which would leave us to SIGKILL.
    () => void setTimeout(() => process.exit(), 1000).unref(),
    (err: unknown) => {
      const log = createLogger('info', svc)
      if (isConfigError(err)) log.fatal({ code: err.code }, err.message)
      else log.fatal({ err }, 'failed to start')
      process.exitCode = isConfigError(err) ? 2 : 1
      // A start that failed half-way leaves connections and timers behind: a process that logged it failed
      // must not linger registered, or answering half its endpoints.
      setTimeout(() => process.exit(), 100).unref()
    },
  )
}
