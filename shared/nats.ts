import { setTimeout as delay } from 'node:timers/promises'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator, type NatsConnection } from '@nats-io/nats-core'
import type { EnvReader } from './env.ts'
import type { Logger } from './log.ts'

export type { NatsConnection }

export interface NatsConfig {
  servers: string[]
  /** Contents of a system-account user's creds file; never logged. */
  creds: string | undefined
  credsPath: string | undefined
}

const CREDS_SHAPE = /-----BEGIN NATS USER JWT-----[\s\S]+-----BEGIN USER NKEY SEED-----/

/** NATS_URL (comma-separated list allowed) and NATS_CREDS, shared by every service. */
export function readNatsConfig(r: EnvReader): NatsConfig {
  const servers = r
    .string('NATS_URL', 'nats://127.0.0.1:4222')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  for (const s of servers) {
    if (!/^(nats|tls|ws|wss):\/\/[^\s]+$|^[^\s:/]+(:\d+)?$/.test(s)) r.problem('NATS_URL', `"${s}" is not a NATS url`)
  }
  const file = r.optionalFile('NATS_CREDS')
  if (file !== undefined && !CREDS_SHAPE.test(file.text)) {
    r.problem('NATS_CREDS', `${file.path} is not a NATS creds file (user JWT and seed)`)
  }
  return { servers, creds: file?.text, credsPath: file?.path }
}

/** A NATS URL (or text holding one) with its user and password, or token, hidden: for log lines. */
export function redactUrl(text: string): string {
  return text.replace(/\/\/[^/@\s]*@/g, '//[redacted]@')
}

/**
 * Connects as a system-account user and keeps the connection for the life of the process: the first
 * connect is retried until it succeeds (an unreachable server at start is normal in compose or k8s), and
 * later losses reconnect forever. Connection events are logged.
 */
export async function connectSystem(config: NatsConfig, log: Logger, name: string): Promise<NatsConnection> {
  const authenticator = config.creds === undefined ? undefined : credsAuthenticator(new TextEncoder().encode(config.creds))
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connect({
        servers: config.servers,
        name,
        authenticator,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        pingInterval: 20_000,
        // Otherwise every request builds Error objects up front (stack captured) just in case it fails:
        // measurable on the push path, where each push makes two requests.
        noAsyncTraces: true,
      })
      log.info({ server: redactUrl(nc.getServer()), attempt }, 'connected to nats')
      void logStatus(nc, log)
      return nc
    } catch (err) {
      const message = redactUrl((err as Error).message)
      log.warn({ err: { message }, servers: config.servers.map(redactUrl), attempt }, 'nats unreachable, retrying')
      await delay(Math.min(5000, 250 * attempt))
    }
  }
}

async function logStatus(nc: NatsConnection, log: Logger): Promise<void> {
  for await (const s of nc.status()) {
    switch (s.type) {
      case 'ping':
        break
      case 'error':
        log.error({ err: { message: redactUrl(s.error.message) } }, 'nats server error')
        break
      case 'disconnect':
      case 'reconnect':
      case 'ldm':
        log.warn({ event: s.type, server: redactUrl(s.server) }, `nats ${s.type}`)
        break
      default:
        log.info({ event: s.type }, `nats ${s.type}`)
    }
  }
}
