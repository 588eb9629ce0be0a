import type { ServiceMsg } from '@nats-io/services'
import { AppError, errors } from './errors.ts'
import type { Logger } from './log.ts'

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

/** What a batch answers for an item that threw: its refusal, or INTERNAL once a failure of ours is logged. */
export function itemRefusal(e: unknown, log: Logger): { error: ReturnType<AppError['toJSON']> } {
  if (e instanceof AppError) return { error: e.toJSON() }
  log.error({ err: e }, 'unexpected failure')
  return { error: errors.internal('this item failed unexpectedly').toJSON() }
}
