import type { NatsConnection } from '@nats-io/nats-core'
import { gather } from './sys-requests.ts'

export interface EndpointInfo {
  service: string
  name: string
  subject: string
  queue_group?: string
}

export interface ServiceInfo {
  name: string
  id: string
  endpoints: EndpointInfo[]
}

/** Every running micro service's `$SRV.INFO` reply, waiting until at least `expect` services answered. */
export async function serviceInfos(nc: NatsConnection, expect: number, ms = 1500): Promise<ServiceInfo[]> {
  const replies = await gather(nc, '$SRV.INFO', '', expect, ms)
  return replies.map((m) => {
    const r = m.json<{ name: string; id: string; endpoints: Omit<EndpointInfo, 'service'>[] | null }>()
    return { name: r.name, id: r.id, endpoints: (r.endpoints ?? []).map((e) => ({ ...e, service: r.name })) }
  })
}

/** Every endpoint the running services expose, as INFO lists them. */
export async function allEndpoints(nc: NatsConnection, expect: number): Promise<EndpointInfo[]> {
  return (await serviceInfos(nc, expect)).flatMap((s) => s.endpoints)
}

/** A concrete subject for an endpoint's subscription: `*` and `>` become `token`. */
export const concreteSubject = (pattern: string, token: string) =>
  pattern
    .split('.')
    .map((t) => (t === '*' || t === '>' ? token : t))
    .join('.')

/** Each endpoint's request count, by `service/endpoint`, from `$SRV.STATS`. */
export async function requestCounts(nc: NatsConnection, expect: number): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const m of await gather(nc, '$SRV.STATS', '', expect, 1500)) {
    const r = m.json<{ name: string; endpoints: { name: string; num_requests: number }[] }>()
    for (const e of r.endpoints ?? []) out.set(`${r.name}/${e.name}`, e.num_requests)
  }
  return out
}
