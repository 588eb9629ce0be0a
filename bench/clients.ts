import { connect } from '@nats-io/transport-node'
import type { Authenticator, NatsConnection } from '@nats-io/nats-core'
import { connectWith } from '../test/kit/clients.ts'
import type { NatsServerHandle } from '../test/kit/nats-server.ts'
import type { Scope } from './scope.ts'

/** Connects once as a user the bench made (signing with OpenSSL), without reconnecting: a refusal shows. */
export function connectOnce(servers: NatsServerHandle | NatsServerHandle[], authenticator: Authenticator, timeout = 10_000): Promise<NatsConnection> {
  return connect({
    servers: (Array.isArray(servers) ? servers : [servers]).map((s) => s.url),
    authenticator,
    reconnect: false,
    timeout,
  })
}

/** The kit's client: connects with a user's creds, closed with the scope. */
export const connectAs = (scope: Scope, servers: NatsServerHandle | NatsServerHandle[], creds: string): Promise<NatsConnection> =>
  connectWith(scope, servers, creds, { timeout: 10_000 })
