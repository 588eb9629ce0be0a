import { readFile } from 'node:fs/promises'
import type { NatsConnection } from '@nats-io/nats-core'
import { subjects, trustAnchorFrom, type TrustAnchor } from '../shared/index.ts'
import { CliError } from './cli-error.ts'
import { request } from './requests.ts'

/**
 * The operator to judge stored accounts against: the JWT in `file` when given (to lint against an operator
 * edited with nsc but not yet deployed), otherwise the one the signer trusts now.
 */
export async function operatorTrust(nc: () => Promise<NatsConnection>, file: string | undefined, timeoutMs: number): Promise<TrustAnchor> {
  let jwt: string
  let from: string
  if (file !== undefined) {
    jwt = await readFile(file, 'utf8').catch((e: Error) => {
      throw new CliError(`--operator ${file}: ${e.message}`)
    })
    from = file
  } else {
    jwt = (await request(await nc(), subjects.signerOperator, '', timeoutMs)).string()
    from = 'the signer'
  }
  try {
    return trustAnchorFrom(jwt)
  } catch (e) {
    throw new CliError(`the operator jwt from ${from} is not valid: ${(e as Error).message}`)
  }
}
