import { connect } from '@nats-io/transport-node'
import { credsAuthenticator, errors as natsErrors, type NatsConnection } from '@nats-io/nats-core'
import { CliError, readNamedFile } from './cli-error.ts'
import type { GlobalOptions } from './context.ts'

const CREDS_SHAPE = /-----BEGIN NATS USER JWT-----[\s\S]+-----BEGIN USER NKEY SEED-----/

/** The creds file's text, checked for shape; errors name the path, never the contents. */
async function readCreds(path: string): Promise<string> {
  const text = await readNamedFile(path, 'creds file')
  if (!CREDS_SHAPE.test(text)) throw new CliError(`${path} is not a NATS creds file (user JWT and seed)`)
  return text
}

/**
 * One connection for one command: no reconnect, so an unreachable or refusing server is a prompt one-line
 * error rather than a hang.
 */
export async function connectCli(g: GlobalOptions): Promise<NatsConnection> {
  const creds = g.credsPath === undefined ? undefined : await readCreds(g.credsPath)
  const where = g.servers.join(',')
  try {
    return await connect({
      servers: g.servers,
      name: 'mesh-cli',
      authenticator: creds === undefined ? undefined : credsAuthenticator(new TextEncoder().encode(creds)),
      reconnect: false,
      timeout: g.timeoutMs,
    })
  } catch (e) {
    if (e instanceof natsErrors.AuthorizationError) {
      throw new CliError(`${where} refused the credentials (${g.credsPath ?? 'none given; use --creds or NATS_CREDS'})`)
    }
    if (e instanceof natsErrors.TimeoutError) throw new CliError(`cannot connect to ${where}: timed out after ${g.timeoutMs} ms`)
    throw new CliError(`cannot connect to ${where}: ${(e as Error).message}`)
  }
}
