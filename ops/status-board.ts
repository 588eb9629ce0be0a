import type { NatsConnection } from '@nats-io/nats-core'
import { MESH_SERVICES, subjects, type HealthReport, type MeshServiceName as Name } from '../shared/index.ts'

/** What each service adds to its health reply, in a few words. */
const DETAILS: Record<Name, (h: HealthReport) => string> = {
  resolver: (h) => `store ${String(h.store)}`,
  signer: (h) => `managed signing ${h.managed === true ? 'on' : 'off'}`,
  notifier: (h) => `${Array.isArray(h.servers) ? h.servers.length : '?'} nats-server(s) known`,
}

/** One line for one service, from its health reply (undefined: no reply). */
export function statusLine(name: Name, h: HealthReport | undefined): string {
  const label = name.padEnd(9)
  if (h === undefined) return `${label} NO REPLY   starting or down (${subjects.health(name)})`
  const state = (h.ok ? 'healthy' : 'UNHEALTHY').padEnd(10)
  return `${label} ${state} nats ${h.nats.status}  ${DETAILS[name](h)}  id ${h.id.slice(0, 6)}`
}

/**
 * The dev stack's live status: one line per service from its health endpoint, polled every `everyMs`. On a
 * terminal the lines stay at the bottom and are redrawn in place; otherwise a line is printed when it changes.
 * Messages printed through `above()` go above the board.
 */
export class StatusBoard {
  private readonly lines = new Map<Name, string>()
  private timer: NodeJS.Timeout | undefined
  private drawn = 0
  private stopped = false

  constructor(
    private readonly nc: NatsConnection,
    private readonly out: NodeJS.WriteStream,
    private readonly everyMs = 2000,
  ) {}

  start(): void {
    void this.poll()
  }

  /** Freezes the board; later messages print below it. */
  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.drawn = 0
  }

  above(message: string): void {
    if (!this.out.isTTY || this.drawn === 0) return void this.out.write(`${message}\n`)
    this.out.write(`\x1b[${this.drawn}A\x1b[J${message}\n`)
    this.drawn = 0
    this.draw()
  }

  private async poll(): Promise<void> {
    const replies = await Promise.all(
      MESH_SERVICES.map(async (name) => {
        try {
          const m = await this.nc.request(subjects.health(name), '', { timeout: Math.min(1500, this.everyMs) })
          return [name, statusLine(name, m.json<HealthReport>())] as const
        } catch {
          return [name, statusLine(name, undefined)] as const
        }
      }),
    )
    if (this.stopped) return
    const changed = replies.filter(([name, line]) => this.lines.get(name) !== line)
    for (const [name, line] of replies) this.lines.set(name, line)
    if (this.out.isTTY) this.draw()
    else for (const [, line] of changed) this.out.write(`[status] ${line}\n`)
    this.timer = setTimeout(() => void this.poll(), this.everyMs)
  }

  private draw(): void {
    const lines = [...this.lines.values()]
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : ''
    this.out.write(`${up}${lines.map((l) => `\x1b[2K[status] ${l}\n`).join('')}`)
    this.drawn = lines.length
  }
}
