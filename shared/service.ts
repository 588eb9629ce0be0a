import { Svcm, type Service, type ServiceMsg } from '@nats-io/services'
import type { NatsConnection } from '@nats-io/nats-core'
import { AppError, errors } from './errors.ts'
import type { Logger } from './log.ts'
import { VERSION } from './version.ts'

/** What a handler replies: bytes or text, sent as the bare payload. */
export type Reply = Uint8Array | string

/** Turns a failure into the reply body of an endpoint's dialect; `undefined` means "send micro error headers". */
export type ErrorReply = (error: AppError, msg: ServiceMsg) => Reply | undefined

export interface EndpointSpec {
  name: string
  subject: string
  /** Defaults to the micro default `q`; PACK needs `responder`. */
  queue?: string
  description: string
  handle: (msg: ServiceMsg, log: Logger) => Promise<Reply | undefined>
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
    this.svc.addEndpoint(spec.name, {
      subject: spec.subject,
      queue: spec.queue,
      metadata: { description: spec.description },
      handler: (err, msg) => {
        if (err) return void log.error({ err }, 'endpoint subscription failed')
        const done = this.serve(spec, msg, log).finally(() => this.inflight.delete(done))
        this.inflight.add(done)
      },
    })
    const stats = this.statsOf(spec.name)
    // The library counts at the synchronous return; we count at the reply instead (see serve()).
    stats.countLatency = () => {}
    // natscli's schema requires last_error even when there has been none.
    const plain = stats._stats.bind(stats)
    stats._stats = () => ({ ...plain(), last_error: stats.last_error ?? '' })
  }

  private async serve(spec: EndpointSpec, msg: ServiceMsg, log: Logger): Promise<void> {
    const start = process.hrtime.bigint()
    const stats = this.statsOf(spec.name)
    let failure: AppError | undefined
    try {
      const body = await spec.handle(msg, log)
      if (msg.reply) msg.respond(body ?? new Uint8Array())
    } catch (e) {
      failure = e instanceof AppError ? e : errors.internal(e)
      if (e instanceof AppError) log.info({ code: e.code, subject: msg.subject }, e.message)
      else log.error({ err: e, subject: msg.subject }, 'unexpected failure')
      if (msg.reply) this.replyError(spec, msg, failure)
    } finally {
      const ns = Number(process.hrtime.bigint() - start)
      stats.num_requests++
      stats.processing_time += ns
      stats.average_processing_time = Math.round(stats.processing_time / stats.num_requests)
      if (failure) stats.countError(failure)
    }
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
