import type { NatsConnection } from '@nats-io/nats-core'
import type { Logger } from './log.ts'
import type { MeshService } from './service.ts'

export interface RunParts {
  log: Logger
  service: MeshService
  nc: NatsConnection
  /**
   * Work the service started on its own that must finish while NATS is still up (the resolver's deliveries
   * to the notifier): awaited after the service has answered its requests, before the connection drains.
   */
  settle?: (() => Promise<void>)[]
  /** Closed in reverse order of this list, after NATS has drained: list them in the order they were opened. */
  closers?: (() => Promise<void>)[]
}

/**
 * Runs a service until SIGINT/SIGTERM or until it stops on its own, then undoes setup in reverse: stop
 * taking requests and answer those in flight, let started work settle, drain NATS so replies go out, then
 * close the rest (the store last). Sets the exit code: 0 for a signal, 1 if the service stopped because of an error.
 */
export async function runUntilStopped({ log, service, nc, settle = [], closers = [] }: RunParts): Promise<void> {
  const signalled = new Promise<string>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve(sig))
  })
  // Every endpoint is wired by now: what tests, the dev stack and operators wait for.
  log.info({ id: service.id }, 'service ready')
  const reason = await Promise.race([signalled, service.stopped.then((err) => err ?? new Error('service stopped'))])
  const failed = reason instanceof Error
  if (failed) log.error({ err: reason }, 'service stopped unexpectedly')
  else log.info({ signal: reason }, 'stopping')

  const problems: unknown[] = []
  const step = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn()
    } catch (err) {
      problems.push(err)
      log.error({ err, step: what }, 'shutdown step failed')
    }
  }
  await step('service', () => service.stop())
  for (const fn of settle) await step('settle', fn)
  await step('nats', async () => {
    if (!nc.isClosed()) await nc.drain()
  })
  for (const close of [...closers].reverse()) await step('closer', close)
  process.exitCode = failed || problems.length > 0 ? 1 : 0
  log.info({ exitCode: process.exitCode }, 'stopped')
}
