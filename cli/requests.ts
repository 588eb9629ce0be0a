import { createInbox, errors as natsErrors, type Msg, type NatsConnection } from '@nats-io/nats-core'
import { CliError } from './cli-error.ts'

/** The `server.name` of our resolver's claim replies, beside the nats-servers' own (protocol.md §3.2). */
export const RESOLVER = 'resolver'

/** A reply in nats-server's claim dialect (UPDATE, LIST, DELETE). */
export interface ClaimReply {
  server: { name: string; id: string; ver?: string }
  data?: unknown
  error?: { account?: string; code: number; description: string; reason?: string }
}

type Body = string | Uint8Array

/** Publishes with a reply subject; a refused publish (over max_payload, closed connection) is a CliError. */
function publish(nc: NatsConnection, subject: string, body: Body, reply: string, undo: () => void): void {
  try {
    nc.publish(subject, body, { reply })
  } catch (e) {
    undo()
    throw new CliError(`cannot send on ${subject}: ${(e as Error).message}`)
  }
}

/**
 * Publishes with a reply inbox and gathers replies as `nats micro ls` does: up to `firstMs` for the first,
 * then until `silenceMs` pass without one, or until `max` arrived.
 */
export async function collect(
  nc: NatsConnection,
  subject: string,
  body: Body,
  opts: { firstMs: number; silenceMs?: number; max?: number },
): Promise<Msg[]> {
  const inbox = createInbox()
  const sub = nc.subscribe(inbox, opts.max === undefined ? {} : { max: opts.max })
  let timer = setTimeout(() => sub.unsubscribe(), opts.firstMs)
  publish(nc, subject, body, inbox, () => (clearTimeout(timer), sub.unsubscribe()))
  const out: Msg[] = []
  for await (const m of sub) {
    out.push(m)
    clearTimeout(timer)
    timer = setTimeout(() => sub.unsubscribe(), opts.silenceMs ?? 300)
  }
  clearTimeout(timer)
  return out
}

function claimReply(m: Msg): ClaimReply | undefined {
  try {
    const r = m.json<ClaimReply>()
    return typeof r === 'object' && r !== null && typeof r.server === 'object' && r.server !== null ? r : undefined
  } catch {
    return undefined // not JSON: not a claim reply, so not ours either
  }
}

/**
 * Sends on a `$SYS` claim subject that every nats-server answers too, and returns our resolver's reply
 * among them (the servers' replies are not waited for).
 */
export async function askResolver(nc: NatsConnection, subject: string, body: Body, timeoutMs: number): Promise<ClaimReply> {
  const inbox = createInbox()
  const sub = nc.subscribe(inbox)
  const timer = setTimeout(() => sub.unsubscribe(), timeoutMs)
  publish(nc, subject, body, inbox, () => (clearTimeout(timer), sub.unsubscribe()))
  try {
    for await (const m of sub) {
      const r = claimReply(m)
      if (r?.server.name === RESOLVER) return r
    }
  } finally {
    clearTimeout(timer)
    if (!sub.isClosed()) sub.unsubscribe()
  }
  throw new CliError(`no reply from the resolver on ${subject} within ${timeoutMs} ms (is it running?)`)
}

/**
 * A plain request/reply. No responders, a timeout and a micro error reply (`Nats-Service-Error` headers)
 * become one-line CliErrors naming the subject.
 */
export async function request(nc: NatsConnection, subject: string, body: Body, timeoutMs: number): Promise<Msg> {
  let m: Msg
  try {
    m = await nc.request(subject, body, { timeout: timeoutMs })
  } catch (e) {
    if (e instanceof natsErrors.RequestError && e.isNoResponders()) throw new CliError(`nothing answers ${subject} (is the service running?)`)
    if (e instanceof natsErrors.TimeoutError || (e as Error).cause instanceof natsErrors.TimeoutError) {
      throw new CliError(`no reply on ${subject} within ${timeoutMs} ms`)
    }
    throw new CliError(`request on ${subject} failed: ${(e as Error).message}`)
  }
  const error = m.headers?.get('Nats-Service-Error')
  if (error) throw new CliError(`${subject}: ${error} (${m.headers?.get('Nats-Service-Error-Code') ?? 'error'})`)
  return m
}

/** Maps `items` through `fn` with at most `limit` calls in flight, keeping the order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
