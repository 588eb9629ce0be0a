import type { NatsConnection } from '@nats-io/nats-core'
import type { Logger } from './log.ts'
import type { MeshService } from './service.ts'

/**
 * How long a stop may spend answering what is in flight. Past it (or as soon as the NATS connection is lost,
 * when nothing can be answered anyway) the connection is closed without draining, so a stop never hangs.
 * Below docker-compose.yml's `stop_grace_period`.
 */
export const SHUTDOWN_GRACE_MS = 20_000

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
 * close the rest (the store last). Sets the exit code: 0 for a signal, 1 if the service stopped because of an
 * error or could not stop cleanly (a step failed, NATS was lost, or the grace period ran out).
 */
export async function runUntilStopped({ log, service, nc, settle = [], closers = [] }: RunParts): Promise<void> {
  const signalled = new Promise<string>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve(sig))
  })
  const connection = watchConnection(nc)
  // Every endpoint is wired by now: what tests, the dev stack and operators wait for. The flush makes it true
  // on the server too, which may not have processed the endpoints' subscriptions yet.
  await nc.flush()
  log.info({ id: service.id }, 'service ready')
  const reason = await Promise.race([signalled, service.stopped.then((err) => err ?? new Error('service stopped'))])
  const failed = reason instanceof Error
  if (failed) log.error({ err: reason }, 'service stopped unexpectedly')
  else log.info({ signal: reason }, 'stopping')

  const problems: unknown[] = []
  let abandoned = false
  const step = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn()
    } catch (err) {
      if (abandoned && what !== 'closer') return // the graceful steps cut short fail as expected
      problems.push(err)
      log.error({ err, step: what }, 'shutdown step failed')
    }
  }
  const graceful = (async () => {
    await step('service', () => service.stop())
    for (const fn of settle) await step('settle', fn)
    await step('nats', async () => {
      if (!nc.isClosed()) await nc.drain()
    })
  })()
  let timer: NodeJS.Timeout | undefined
  const cut = await Promise.race([
    graceful.then(() => undefined),
    connection.lost().then(() => 'the nats connection is lost'),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`not done after ${SHUTDOWN_GRACE_MS} ms`), SHUTDOWN_GRACE_MS))),
  ])
  clearTimeout(timer)
  if (cut !== undefined) {
    // Draining needs the server: without it, subscriptions and the connection would wait for it forever.
    abandoned = true
    problems.push(new Error(cut))
    log.warn({ why: cut }, 'closing nats without draining: replies still in flight are lost')
    await step('close', () => nc.close())
  }
  for (const close of [...closers].reverse()) await step('closer', close)
  process.exitCode = failed || problems.length > 0 ? 1 : 0
  log.info({ exitCode: process.exitCode }, 'stopped')
}

/** Tracks whether the connection is up; `lost()` resolves at once while it is down, else at the next loss. */
function watchConnection(nc: NatsConnection): { lost(): Promise<void> } {
  let connected = true // connectSystem hands over a connected connection
  const waiting: (() => void)[] = []
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        connected = false
        for (const wake of waiting.splice(0)) wake()
      } else if (s.type === 'reconnect') connected = true
    }
  })()
  return { lost: () => (connected ? new Promise<void>((resolve) => waiting.push(resolve)) : Promise.resolve()) }
}
