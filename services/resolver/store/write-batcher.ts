interface Pending<Op> {
  ops: Op[]
  resolve: () => void
  reject: (e: unknown) => void
}

/**
 * Group commit for synced writes. A batch committed while no write is in progress is written at once; the
 * batches committed while a write is in progress are merged, in the order they were committed, into the
 * next single write. Each caller's operations stay together in one atomic write, and each caller's
 * promise settles only with the write that holds them, so "resolved" still means "on disk". Under
 * concurrent pushes one fsync serves many of them instead of one each.
 *
 * Writes never overlap, so they reach the disk in commit order: a key written by several merged batches
 * (the store's seq and hash) ends with the value of the last one committed.
 */
export class WriteBatcher<Op> {
  private queue: Pending<Op>[] = []
  private writing = false

  /**
   * @param write writes `ops` atomically and durably (e.g. `db.batch(ops, { sync: true })`)
   * @param maxOps merged writes stop growing at about this many operations
   */
  constructor(
    private readonly write: (ops: Op[]) => Promise<void>,
    private readonly maxOps = 10_000,
  ) {}

  /** Resolves once `ops` are written; rejects with the write's error if it failed (then none of them is). */
  commit(ops: Op[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject })
      if (!this.writing) void this.drain()
    })
  }

  private async drain(): Promise<void> {
    this.writing = true
    while (this.queue.length > 0) {
      let count = 0
      let take = 0
      while (take < this.queue.length && (take === 0 || count + this.queue[take]!.ops.length <= this.maxOps)) {
        count += this.queue[take]!.ops.length
        take++
      }
      const group = this.queue.splice(0, take)
      try {
        await this.write(group.length === 1 ? group[0]!.ops : group.flatMap((p) => p.ops))
        for (const p of group) p.resolve()
      } catch (e) {
        for (const p of group) p.reject(e)
      }
    }
    this.writing = false
  }
}
