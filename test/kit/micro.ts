import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import { headers, type Msg, type NatsConnection } from '@nats-io/nats-core'
import { gather, subjects, type MicroVerb } from '../../shared/index.ts'

export type { MicroVerb } from '../../shared/index.ts'

export interface MicroEndpointInfo {
  name: string
  subject: string
  queue_group?: string
  metadata: Record<string, string> | null
}

export interface MicroEndpointStats {
  name: string
  subject: string
  queue_group?: string
  num_requests: number
  num_errors: number
  last_error: string
  processing_time: number
  average_processing_time: number
}

export interface MicroReply {
  type: string
  name: string
  id: string
  version: string
  metadata: Record<string, string> | null
}
export interface MicroInfo extends MicroReply {
  description: string
  endpoints: MicroEndpointInfo[]
}
export interface MicroStats extends MicroReply {
  started: string
  endpoints: MicroEndpointStats[]
}

const ajv = new Ajv({ allErrors: true })
addFormats.default(ajv, ['date-time'])
const schema = (verb: string): ValidateFunction =>
  ajv.compile(JSON.parse(readFileSync(new URL(`../schemas/${verb}_response.json`, import.meta.url), 'utf8')) as object)

/** The io.nats.micro.v1 schemas natscli checks replies against (test/schemas/). */
const validators: Record<MicroVerb, ValidateFunction> = { PING: schema('ping'), INFO: schema('info'), STATS: schema('stats') }

/** Schema problems of one reply as readable lines; empty when it is valid. */
export function schemaProblems(verb: MicroVerb, reply: unknown): string[] {
  const validate = validators[verb]
  if (validate(reply)) return []
  return (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`)
}

/** The request natscli sends on `$SRV` subjects: `{}` with `Accept-Encoding: snappy` (a plain reply is fine). */
function natscliRequest(): { body: string; opts: { headers: ReturnType<typeof headers> } } {
  const h = headers()
  h.set('Accept-Encoding', 'snappy')
  return { body: '{}', opts: { headers: h } }
}

/**
 * Gathers replies as `nats micro ls` does: wait up to `timeoutMs` for a first reply, then keep reading until
 * `silenceMs` pass without one.
 */
export function collectLikeNatsCli(
  nc: NatsConnection,
  subject: string,
  { timeoutMs = 5000, silenceMs = 300 }: { timeoutMs?: number; silenceMs?: number } = {},
): Promise<Msg[]> {
  const { body, opts } = natscliRequest()
  return gather(nc, subject, body, { strategy: 'stall', maxWait: timeoutMs, stall: silenceMs, ...opts })
}

/** `$SRV.<verb>.<name>.<id>`, first reply, as `nats micro info` and `stats` ask one instance. */
export async function askInstance<T>(nc: NatsConnection, verb: MicroVerb, name: string, id: string): Promise<T> {
  const { body, opts } = natscliRequest()
  const reply = await nc.request(subjects.micro(verb, name, id), body, { timeout: 3000, ...opts })
  return reply.json<T>()
}
