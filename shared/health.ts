import { hostname } from 'node:os'
import type { NatsConnection } from '@nats-io/nats-core'
import type { MeshService } from './service.ts'

/** The NATS connection as a health reply reports it. */
export interface NatsHealth {
  status: 'connected' | 'draining' | 'closed'
  /** The server this instance is connected to. */
  server: string
}

/** What a service's own check adds to its health reply; `ok: false` marks the instance unhealthy. */
export type HealthCheck = { ok: boolean } & Record<string, unknown>

/**
 * The body of every `mesh.<service>.health` reply. `ok` is the verdict (`ops/healthcheck.ts` exits on it);
 * the service's own fields (store, servers, signing) sit beside these.
 */
export interface HealthReport {
  ok: boolean
  service: string
  id: string
  version: string
  host: string
  nats: NatsHealth
  [detail: string]: unknown
}

/** This host's name as one subject token: in a container, the container's own name. */
export function hostToken(host = hostname()): string {
  return host.replace(/[^A-Za-z0-9_-]/g, '_') || 'unknown'
}

/**
 * Where the instances on one host answer health: a container healthcheck must ask its own instance, not
 * whichever replica the queue group picks.
 */
export const healthOnHost = (subject: string, host = hostToken()) => `${subject}.${host}`

export function natsHealth(nc: NatsConnection): NatsHealth {
  return { status: nc.isClosed() ? 'closed' : nc.isDraining() ? 'draining' : 'connected', server: nc.getServer() }
}

/**
 * Adds the `health` endpoint: this instance, its NATS connection and what `check` adds. Unhealthy is a
 * normal reply with `ok: false`, not a micro error, so STATS count only failed requests as errors.
 */
export function addHealthEndpoint(
  service: MeshService,
  nc: NatsConnection,
  spec: { subject: string; description: string; check: () => Promise<HealthCheck> },
): void {
  const handle = async () => {
    const { name, id, version } = service.svc.info()
    const nats = natsHealth(nc)
    const { ok, ...details } = await spec.check()
    const report: HealthReport = { ok: ok && nats.status === 'connected', service: name, id, version, host: hostname(), nats, ...details }
    return JSON.stringify(report)
  }
  service.endpoint({ name: 'health', subject: spec.subject, description: spec.description, handle })
  service.endpoint({
    name: 'health-on-host',
    subject: healthOnHost(spec.subject),
    description: `${spec.description}; answered only by the instances on this host, for container healthchecks`,
    handle,
  })
}
