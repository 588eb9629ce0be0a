import { Svcm, type Service, type ServiceMsg } from '@nats-io/services'
import type { NatsConnection } from '@nats-io/nats-core'
import { AppError, errors } from './errors.ts'
import type { Logger } from './log.ts'
import { VERSION } from './version.ts'

/** What a handler replies: bytes or text, sent as the bare payload. */
export type Reply = Uint8Array | string

const EMPTY = new Uint8Array()

/**
 * What a handler returns to send no reply at all (the request still counts in STATS): a resolver that is
 * not authoritative stays silent on an unknown account, so another responder's answer is the one taken.
 */
export const NO_REPLY: unique symbol = Symbol('no reply')

/** Turns a failure into the reply body of an endpoint's dialect; `undefined` means "send micro error headers". */
export type ErrorReply = (error: AppError, msg: ServiceMsg) => Reply | undefined

export interface EndpointSpec {
  name: string
  subject: string
  /** Defaults to the micro default `q`; PACK needs `responder`. */
  queue?: string
  description: string
  /**
   * The reply body (undefined = empty). A handler that can answer at once (a cache hit) should return the
   * body rather than a promise: the reply then leaves in the request's own tick, so the replies to a burst
   * of requests share one socket write instead of one write per microtask turn.
   */
  handle: (msg: ServiceMsg, log: Logger) => Reply | undefined | typeof NO_REPLY | Promise<Reply | undefined | typeof NO_REPLY>
  /**
   * `$SYS` endpoints must answer in nats-server's dialect (protocol.md §7: never error headers there). Without
   * this, errors go out as `Nats-Service-Error` headers with the AppError's JSON as body.
   */
  errorReply?: ErrorReply
}

interface EndpointStatsInternals {
  num_requests: number
  num_errors: number
  last_error?: string
  processing_time: number
  average_processing_time: number
  countLatency(start: number): void
  countError(err: Error): void
  _stats(): Record<string, unknown>
}

/**
 * A micro service whose handlers are async. @nats-io/services times and counts only the synchronous part
 * of a handler and counts only thrown errors, so its STATS would report near-zero times and no errors for
 * async work; this class keeps the numbers itself, in the library's own stats objects, so `$SRV.STATS`
 * tells the truth. It also tracks requests in flight so a stop can wait for their replies.
 */
export class MeshService {
  private readonly inflight = new Set<Promise<void>>()

  private constructor(
    readonly svc: Service,
    private readonly log: Logger,
  ) {}

  static async start(
    nc: NatsConnection,
    log: Logger,
    config: { name: string; description: string; metadata?: Record<string, string> },
  ): Promise<MeshService> {
    const svc = await new Svcm(nc).add({
      name: config.name,
      version: VERSION,
      description: config.description,
      metadata: { ...config.metadata },
    })
    log.info({ id: svc.info().id, version: VERSION }, 'service registered')
    return new MeshService(svc, log)
  }

  get id(): string {
    return this.svc.info().id
  }

  endpoint(spec: EndpointSpec): void {
    const log = this.log.child({ endpoint: spec.name })
    let stats: EndpointStatsInternals | undefined
    this.svc.addEndpoint(spec.name, {
      subject: spec.subject,
      queue: spec.queue,
      metadata: { description: spec.description },
      handler: (err, msg) => {
        if (err) return void log.error({ err }, 'endpoint subscription failed')
        const pending = this.serve(spec, stats!, msg, log)
        if (pending === undefined) return // answered already
        const done = pending.finally(() => this.inflight.delete(done))
        this.inflight.add(done)
      },
    })
    stats = this.statsOf(spec.name)
    // The library counts at the synchronous return; we count at the reply instead (see serve()).
    stats.countLatency = () => {}
    // natscli's schema requires last_error even when there has been none.
    const plain = stats._stats.bind(stats)
    stats._stats = () => ({ ...plain(), last_error: stats.last_error ?? '' })
  }

  /** Answers `msg`; returns a promise only while the handler is still working on it. */
  private serve(spec: EndpointSpec, stats: EndpointStatsInternals, msg: ServiceMsg, log: Logger): Promise<void> | undefined {
    const start = performance.now()
    let out: ReturnType<EndpointSpec['handle']>
    try {
      out = spec.handle(msg, log)
    } catch (e) {
      this.fail(spec, stats, msg, log, e, start)
      return undefined
    }
    if (out instanceof Promise) {
      return out.then(
        (body) => this.reply(spec, stats, msg, log, body, start),
        (e: unknown) => this.fail(spec, stats, msg, log, e, start),
      )
    }
    this.reply(spec, stats, msg, log, out, start)
    return undefined
  }

  private reply(spec: EndpointSpec, stats: EndpointStatsInternals, msg: ServiceMsg, log: Logger, body: Reply | undefined | typeof NO_REPLY, start: number): void {
    try {
      if (msg.reply && body !== NO_REPLY) msg.respond(body ?? EMPTY)
    } catch (e) {
      this.fail(spec, stats, msg, log, e, start)
      return
    }
    this.count(stats, start)
  }

  private fail(spec: EndpointSpec, stats: EndpointStatsInternals, msg: ServiceMsg, log: Logger, e: unknown, start: number): void {
    const failure = e instanceof AppError ? e : errors.internal(e)
    if (e instanceof AppError) log.info({ code: e.code, subject: msg.subject }, e.message)
    else log.error({ err: e, subject: msg.subject }, 'unexpected failure')
    try {
      if (msg.reply) this.replyError(spec, msg, failure)
    } catch (err) {
      log.error({ err, subject: msg.subject }, 'could not send the error reply')
    }
    this.count(stats, start, failure)
  }

  /** Counts at the reply, in whole nanoseconds as the micro protocol wants. */
  private count(stats: EndpointStatsInternals, start: number, failure?: AppError): void {
    stats.num_requests++
    stats.processing_time += Math.round((performance.now() - start) * 1e6)
    stats.average_processing_time = Math.round(stats.processing_time / stats.num_requests)
    if (failure) stats.countError(failure)
  }

  private replyError(spec: EndpointSpec, msg: ServiceMsg, failure: AppError): void {
    const body = spec.errorReply?.(failure, msg)
    if (body !== undefined) msg.respond(body)
    else msg.respondError(failure.status, failure.message, JSON.stringify(failure))
  }

  private statsOf(name: string): EndpointStatsInternals {
    const handlers = (this.svc as unknown as { handlers: { name: string; stats: EndpointStatsInternals }[] }).handlers
    const h = handlers.find((x) => x.name === name)
    if (h === undefined) throw new TypeError(`no endpoint ${name}`)
    return h.stats
  }

  /** Stops taking requests and waits until every request already taken has been answered. */
  async stop(): Promise<void> {
    await this.svc.stop()
    await Promise.allSettled([...this.inflight])
  }

  get stopped(): Promise<null | Error> {
    return this.svc.stopped
  }
}
