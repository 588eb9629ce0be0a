/**
 * Serialises work per account within one process, so a rule always sees the version the previous write left.
 * Several accounts are locked in sorted order, so two callers cannot deadlock.
 */
export class AccountLocks {
  private readonly tails = new Map<string, Promise<unknown>>()

  exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(id) ?? Promise.resolve()
    const run = prev.then(work, work)
    const tail = run.catch(() => undefined)
    this.tails.set(id, tail)
    void tail.then(() => {
      if (this.tails.get(id) === tail) this.tails.delete(id)
    })
    return run
  }

  exclusiveAll<T>(ids: string[], work: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(ids)].sort()
    return sorted.reduceRight<() => Promise<T>>((inner, id) => () => this.exclusive(id, inner), work)()
  }
}
