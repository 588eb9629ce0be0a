import { errors as natsErrors, type Msg, type MsgHdrs, type NatsConnection, type Payload, type RequestStrategy } from '@nats-io/nats-core'

/**
 * How long to collect replies from several responders, in nats-core's `requestMany` terms:
 * - `timer`: until `maxWait` ends (everyone answers within it);
 * - `stall`: up to `maxWait` for the first reply, then until `stall` ms pass without one (`nats micro ls`);
 * - `count`: until `maxMessages` replies or `maxWait`;
 * - `sentinel`: until an empty message or `maxWait` (a PACK stream).
 */
export interface GatherOptions {
  strategy: RequestStrategy
  maxWait: number
  stall?: number
  maxMessages?: number
  headers?: MsgHdrs
  /** Called on each reply as it arrives, before `until`. */
  each?: (m: Msg) => void
  /** Ends the gathering early once the replies so far are enough (every known server answered). */
  until?: (got: Msg[]) => boolean
}

/**
 * Publishes once and collects the replies of every responder, through the connection's shared reply
 * subscription (no SUB/UNSUB per request). Nobody answering (no responders) is an empty list, not an error;
 * a publish the connection refuses (over max_payload, closed) throws, and a connection closing midway ends it.
 */
export async function gather(nc: NatsConnection, subject: string, body: Payload, o: GatherOptions): Promise<Msg[]> {
  const { each, until, ...opts } = o
  const got: Msg[] = []
  const replies = await nc.requestMany(subject, body, opts)
  try {
    for await (const m of replies) {
      got.push(m)
      each?.(m)
      if (until?.(got) === true) break
    }
  } catch (e) {
    // As a subscription would simply end: what arrived before the connection closed is the answer.
    if (!(e instanceof natsErrors.NoRespondersError) && !nc.isClosed()) throw e
  }
  return got
}

/** As `gather`, keeping the replies that are JSON objects (any other cannot be one we asked for). */
export async function gatherJson<T>(
  nc: NatsConnection,
  subject: string,
  body: Payload,
  o: Omit<GatherOptions, 'until' | 'each'> & { until?: (got: T[]) => boolean; each?: (r: T) => void },
): Promise<T[]> {
  const { until, each, ...opts } = o
  const parsed: T[] = []
  await gather(nc, subject, body, {
    ...opts,
    each: (m) => {
      const r = jsonOf<T>(m)
      if (r === undefined) return
      parsed.push(r)
      each?.(r)
    },
    until: until === undefined ? undefined : () => until(parsed),
  })
  return parsed
}

/** The reply's JSON object, or undefined when it is not one (every reply gathered here is an object). */
export function jsonOf<T>(m: Msg): T | undefined {
  let v: unknown
  try {
    v = m.json()
  } catch {
    return undefined // not JSON: not a reply of the kind asked for
  }
  return typeof v === 'object' && v !== null ? (v as T) : undefined
}
