import { deepFreeze, envReader, readLogLevel, readNatsConfig, type Env, type LogLevel, type NatsConfig } from '../../shared/index.ts'

export interface NotifierConfig {
  nats: NatsConfig
  logLevel: LogLevel
  /** How long servers get to cut off revoked (or over-limit) connections before one counts as failing. */
  enforceGraceMs: number
}

export function loadNotifierConfig(env: Env): NotifierConfig {
  const r = envReader(env)
  const config = {
    nats: readNatsConfig(r),
    logLevel: readLogLevel(r),
    enforceGraceMs: r.integer('NOTIFIER_ENFORCE_GRACE_MS', 5000, 100, 600_000),
  }
  r.assertValid()
  return deepFreeze(config)
}
