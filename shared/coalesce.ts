import type { NatsConnection } from '@nats-io/nats-core'

export interface CoalescerOptions<I, O> {
  /** Sends one item alone (the endpoint that existed before batches). */
  one: (item: I) => Promise<O>
  /** Sends several; answers one result per item, in order: a value, or an Error to throw to its caller. */
  many: (items: I[]) => Promise<Array<O | Error>>
  /** Bytes an item adds to a batch request. */
  size: (item: I) => number
  /** Byte budget of one batch request (the server's max_payload, less room for the envelope). */
  budget: () => number
  maxItems: number
}

// Room left in a batch request for the JSON around the items.
const BATCH_SLACK = 4096

/**
 * One Coalescer per connection, made on first use: everything a process asks on a connection in the same
 * moment goes out together, within the connected server's max_payload.
 */
export function perConnection<I, O>(opts: (nc: NatsConnection) => Omit<CoalescerOptions<I, O>, 'budget'>): (nc: NatsConnection) => Coalescer<I, O> {
  const made = new WeakMap<NatsConnection, Coalescer<I, O>>()
  return (nc) => {
    let c = made.get(nc)
    if (c === undefined) made.set(nc, (c = new Coalescer({ ...opts(nc), budget: () => (nc.info?.max_payload ?? 1_048_576) - BATCH_SLACK })))
    return c
  }
}

/**
 * Merges requests made in the same moment into one: items submitted before the event loop next checks for
 * I/O go out together (a burst of pushes read from one socket read lands in one batch), each caller still
 * gets its own answer or error. Like the store's group commit, nothing waits for a batch to fill: a lone item
 * goes out at once, in its own request, on the next turn.
 */
export class Coalescer<I, O> {
  private queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = []
  private scheduled = false

  constructor(private readonly opts: CoalescerOptions<I, O>) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject })
      if (this.scheduled) return
      this.scheduled = true
      setImmediate(() => this.flush())
    })
  }

  private flush(): void {
    this.scheduled = false
    const queue = this.queue
    this.queue = []
    let i = 0
    while (i < queue.length) {
      const chunk = [queue[i]!]
      let bytes = this.opts.size(queue[i]!.item)
      for (i++; i < queue.length && chunk.length < this.opts.maxItems; i++) {
        const b = this.opts.size(queue[i]!.item)
        if (bytes + b > this.opts.budget()) break
        chunk.push(queue[i]!)
        bytes += b
      }
      void this.send(chunk)
    }
  }

  private async send(chunk: typeof this.queue): Promise<void> {
    if (chunk.length === 1) {
      const [only] = chunk as [(typeof chunk)[0]]
      return this.opts.one(only.item).then(only.resolve, only.reject)
    }
    let results: Array<O | Error>
    try {
      results = await this.opts.many(chunk.map((c) => c.item))
      if (results.length !== chunk.length) throw new Error(`batch answered ${results.length} results for ${chunk.length} items`)
    } catch (e) {
      for (const c of chunk) c.reject(e)
      return
    }
    chunk.forEach((c, k) => {
      const r = results[k]!
      if (r instanceof Error) c.reject(r)
      else c.resolve(r)
    })
  }
}
