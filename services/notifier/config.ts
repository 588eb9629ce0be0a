import { deepFreeze, envReader, readLogLevel, readNatsConfig, type Env, type LogLevel, type NatsConfig } from '../../shared/index.ts'

export interface NotifierConfig {
  nats: NatsConfig
  logLevel: LogLevel
}

export function loadNotifierConfig(env: Env): NotifierConfig {
  const r = envReader(env)
  const config = { nats: readNatsConfig(r), logLevel: readLogLevel(r) }
  r.assertValid()
  return deepFreeze(config)
}
