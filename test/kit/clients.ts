import { connect } from '@nats-io/transport-node'
import { credsAuthenticator, type NatsConnection } from '@nats-io/nats-core'
import type { Owner } from './owner.ts'
import type { NatsServerHandle } from './nats-server.ts'

/** Connects with a user's creds; closed when the test ends. */
export async function connectWith(
  t: Owner,
  server: NatsServerHandle | NatsServerHandle[],
  creds: string,
  opts: { reconnect?: boolean; timeout?: number } = {},
): Promise<NatsConnection> {
  const servers = (Array.isArray(server) ? server : [server]).map((s) => s.url)
  const nc = await connect({
    servers,
    authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
    reconnect: opts.reconnect ?? false,
    timeout: opts.timeout ?? 5000,
  })
  t.teardown(() => (nc.isClosed() ? undefined : nc.close()))
  return nc
}
