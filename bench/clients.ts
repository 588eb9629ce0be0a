import { connect } from '@nats-io/transport-node'
import { credsAuthenticator, type Authenticator, type NatsConnection } from '@nats-io/nats-core'
import type { BenchServer } from './servers.ts'
import type { Scope } from './scope.ts'

/** Connects once, without reconnecting (a refused or dropped client must show as such). */
export function connectOnce(servers: BenchServer | BenchServer[], authenticator: Authenticator, timeout = 10_000): Promise<NatsConnection> {
  return connect({
    servers: (Array.isArray(servers) ? servers : [servers]).map((s) => s.url),
    authenticator,
    reconnect: false,
    timeout,
  })
}

/** Connects with a user's creds; closed with the scope. */
export async function connectAs(scope: Scope, servers: BenchServer | BenchServer[], creds: string): Promise<NatsConnection> {
  const nc = await connectOnce(servers, credsAuthenticator(new TextEncoder().encode(creds)))
  scope.defer(() => (nc.isClosed() ? undefined : nc.close()))
  return nc
}
