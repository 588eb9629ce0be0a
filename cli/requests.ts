import { errors as natsErrors, type Msg, type NatsConnection } from '@nats-io/nats-core'
import { gather, isNoResponders, isResolverReply, jsonOf, serviceErrorOf, type ClaimReply as SharedClaimReply, type GatherOptions } from '../shared/index.ts'
import { CliError } from './cli-error.ts'

export { RESOLVER } from '../shared/index.ts'
/** A claim reply as the CLI reads it: `data` is a status, or LIST's ids. */
export type ClaimReply = SharedClaimReply<unknown>
export { mapLimit } from './map-limit.ts'

type Body = string | Uint8Array

/** `gather`, where a publish the connection refuses (over max_payload, closed) is a CliError naming the subject. */
export async function gatherReplies(nc: NatsConnection, subject: string, body: Body, o: GatherOptions): Promise<Msg[]> {
  try {
    return await gather(nc, subject, body, o)
  } catch (e) {
    throw new CliError(`cannot send on ${subject}: ${(e as Error).message}`)
  }
}

/**
 * Sends on a `$SYS` claim subject that every nats-server answers too, and returns our resolver's reply
 * among them (the servers' replies are not waited for).
 */
export async function askResolver(nc: NatsConnection, subject: string, body: Body, timeoutMs: number): Promise<ClaimReply> {
  const replies = await gatherReplies(nc, subject, body, {
    strategy: 'timer',
    maxWait: timeoutMs,
    until: (got) => isResolverReply(jsonOf(got.at(-1)!)),
  })
  const ours = replies.map((m) => jsonOf(m)).find(isResolverReply)
  if (ours === undefined) throw new CliError(`no reply from the resolver on ${subject} within ${timeoutMs} ms (is it running?)`)
  return ours
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
    if (isNoResponders(e)) throw new CliError(`nothing answers ${subject} (is the service running?)`)
    if (e instanceof natsErrors.TimeoutError || (e as Error).cause instanceof natsErrors.TimeoutError) {
      throw new CliError(`no reply on ${subject} within ${timeoutMs} ms`)
    }
    throw new CliError(`request on ${subject} failed: ${(e as Error).message}`)
  }
  const error = serviceErrorOf(m)
  if (error) throw new CliError(`${subject}: ${error.message} (${error.status})`)
  return m
}
