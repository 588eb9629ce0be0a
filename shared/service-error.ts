import { NoRespondersError, RequestError, type Msg } from '@nats-io/nats-core'
import { AppError, appErrorFrom, ErrorCode } from './errors.ts'
import { jsonOf } from './gather.ts'

/** The headers of a micro error reply (`respondError`, protocol.md §7). */
export const ServiceErrorHeader = { text: 'Nats-Service-Error', code: 'Nats-Service-Error-Code' } as const

/**
 * The error a micro reply carries, or undefined for a success. Our services send the AppError itself as
 * the body, so its code survives the hop; any other responder's error is INTERNAL with its header text and code.
 */
export function serviceErrorOf(m: Msg): AppError | undefined {
  const code = m.headers?.get(ServiceErrorHeader.code)
  if (!code) return undefined
  const wire = jsonOf(m)
  const ours = appErrorFrom(wire)
  // appErrorFrom keeps a body it does not recognise as the cause of an INTERNAL
  if (wire !== undefined && ours.cause !== wire) return ours
  const status = Number(code)
  return new AppError(ErrorCode.INTERNAL, Number.isSafeInteger(status) ? status : 500, m.headers?.get(ServiceErrorHeader.text) || 'unknown error')
}

/** Nobody serves the subject: nats.js's request error caused by the server's 503. */
export const isNoResponders = (e: unknown) => e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())
