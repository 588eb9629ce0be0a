import { createInbox, type Msg, type NatsConnection } from '@nats-io/nats-core'
import { Samples } from './stats.ts'

export interface LoopResult {
  /** Replies received inside the measured window. */
  completed: number
  seconds: number
  rps: number
  /** Round trips of requests sent inside the window, in ms. */
  latencies: Float64Array
  /** Replies `ok` rejected. */
  errors: number
  timeouts: number
}

export interface LoopOptions {
  /** The subject of the next request (e.g. a random account's LOOKUP). */
  subject: () => string
  concurrency: number
  warmupMs: number
  durationMs: number
  ok?: (m: Msg) => boolean
  timeoutMs?: number
}

/**
 * A closed-loop request generator: `concurrency` requests in flight, each reply sending the next. Replies
 * come to one wildcard inbox subscription and are matched by slot and sequence in the reply subject, so
 * the generator costs little per request and adds the same cost whatever answers (the same client code
 * for the mesh and for nats-server's resolver). A request not answered within `timeoutMs` is counted and
 * re-issued; its late reply is ignored.
 */
export function closedLoop(nc: NatsConnection, opts: LoopOptions): Promise<LoopResult> {
  const prefix = createInbox()
  const timeoutMs = opts.timeoutMs ?? 2000
  const seq = new Int32Array(opts.concurrency)
  const start = new Float64Array(opts.concurrency)
  const busy = new Uint8Array(opts.concurrency)
  const lat = new Samples()
  const t0 = performance.now()
  const measureFrom = t0 + opts.warmupMs
  const endAt = measureFrom + opts.durationMs
  let completed = 0
  let errors = 0
  let timeouts = 0
  let finish: () => void = () => {}
  const done = new Promise<void>((resolve) => (finish = resolve))

  const issue = (k: number, now: number) => {
    if (now >= endAt) {
      busy[k] = 0
      if (busy.every((b) => b === 0)) finish()
      return
    }
    busy[k] = 1
    seq[k]!++
    start[k] = now
    nc.publish(opts.subject(), undefined, { reply: `${prefix}.${k}.${seq[k]}` })
  }

  const sub = nc.subscribe(`${prefix}.>`, {
    callback: (_err, m) => {
      const now = performance.now()
      const tail = m.subject.slice(prefix.length + 1)
      const dot = tail.indexOf('.')
      const k = Number(tail.slice(0, dot))
      if (busy[k] !== 1 || Number(tail.slice(dot + 1)) !== seq[k]) return // stale: already timed out
      if (start[k]! >= measureFrom && start[k]! < endAt) lat.push(now - start[k]!)
      if (now >= measureFrom && now < endAt) completed++
      if (opts.ok !== undefined && !opts.ok(m)) errors++
      issue(k, now)
    },
  })
  const watchdog = setInterval(() => {
    const now = performance.now()
    for (let k = 0; k < opts.concurrency; k++) {
      if (busy[k] === 1 && now - start[k]! > timeoutMs) {
        timeouts++
        issue(k, now)
      }
    }
  }, 50)
  for (let k = 0; k < opts.concurrency; k++) issue(k, performance.now())
  return done.then(() => {
    clearInterval(watchdog)
    sub.unsubscribe()
    const seconds = opts.durationMs / 1000
    return { completed, seconds, rps: completed / seconds, latencies: lat.values().slice(), errors, timeouts }
  })
}

export interface SendAllResult {
  seconds: number
  latencies: Float64Array
  errors: number
  /** The first few error replies, for the report. */
  firstErrors: string[]
  timeouts: number
}

/**
 * Sends every body once, `concurrency` at a time, as nsc push -A does, and waits for each one's accepted
 * reply. Several responders may answer one request (servers and the resolver hear the same subject):
 * `judge` picks the reply that completes it ('done' or 'error') and ignores the others.
 */
export function sendAll(
  nc: NatsConnection,
  opts: { subject: string; bodies: string[]; concurrency: number; judge: (m: Msg) => 'done' | 'error' | 'ignore'; timeoutMs?: number },
): Promise<SendAllResult> {
  const prefix = createInbox()
  const n = opts.bodies.length
  const started = new Float64Array(n)
  const finished = new Uint8Array(n)
  const lat = new Samples()
  const firstErrors: string[] = []
  let next = 0
  let outstanding = 0
  let errors = 0
  let timeouts = 0
  let finish: () => void = () => {}
  const done = new Promise<void>((resolve) => (finish = resolve))
  const t0 = performance.now()

  const send = () => {
    if (next >= n) {
      if (outstanding === 0) finish()
      return
    }
    const i = next++
    outstanding++
    started[i] = performance.now()
    nc.publish(opts.subject, opts.bodies[i], { reply: `${prefix}.${i}` })
  }
  const complete = (i: number, now: number) => {
    finished[i] = 1
    outstanding--
    lat.push(now - started[i]!)
    send()
  }
  const sub = nc.subscribe(`${prefix}.*`, {
    callback: (_err, m) => {
      const i = Number(m.subject.slice(prefix.length + 1))
      if (finished[i] === 1) return
      const verdict = opts.judge(m)
      if (verdict === 'ignore') return
      if (verdict === 'error') {
        errors++
        if (firstErrors.length < 3) firstErrors.push(m.string().slice(0, 300))
      }
      complete(i, performance.now())
    },
  })
  const timeoutMs = opts.timeoutMs ?? 10_000
  const watchdog = setInterval(() => {
    const now = performance.now()
    for (let i = 0; i < next; i++) {
      if (finished[i] === 0 && now - started[i]! > timeoutMs) {
        timeouts++
        complete(i, now)
      }
    }
  }, 250)
  for (let k = 0; k < Math.min(opts.concurrency, n); k++) send()
  return done.then(() => {
    clearInterval(watchdog)
    sub.unsubscribe()
    return { seconds: (performance.now() - t0) / 1000, latencies: lat.values().slice(), errors, firstErrors, timeouts }
  })
}
