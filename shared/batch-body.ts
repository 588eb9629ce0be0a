import type { ServiceMsg } from '@nats-io/services'
import { errors } from './errors.ts'

/**
 * The body of a batch endpoint (validate-batch, notify-batch): a JSON list of 1 to `max` items, each still
 * to be checked by the caller. Anything else is REQUEST_INVALID naming what was wrong.
 */
export function batchBody(msg: ServiceMsg, max: number, what: string): unknown[] {
  if (msg.data.length === 0) throw errors.requestInvalid('request body is empty')
  let body: unknown
  try {
    body = msg.json()
  } catch {
    throw errors.requestInvalid('body is not JSON')
  }
  if (!Array.isArray(body) || body.length === 0 || body.length > max) {
    throw errors.requestInvalid(`body must be a list of 1 to ${max} ${what}`)
  }
  return body as unknown[]
}
