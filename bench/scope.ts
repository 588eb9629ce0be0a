import { tempDir } from '../test/kit/fixtures.ts'
import type { Owner } from '../test/kit/owner.ts'

/**
 * What one benchmark case opened (servers, services, connections, temp dirs), closed in reverse order of
 * opening, like tap's teardowns: a case that fails half-way still leaves nothing running.
 */
export class Scope implements Owner {
  private readonly undo: (() => unknown)[] = []
  private closing: Promise<void> | undefined

  /** Registers `fn` to run when the scope closes (last registered runs first). */
  defer(fn: () => unknown): void {
    this.undo.push(fn)
  }

  /** The kit's name for defer: the scope owns what kit functions start, as a tap test does. */
  teardown(fn: () => unknown): void {
    this.defer(fn)
  }

  /** A fresh temporary directory, removed when the scope closes. */
  tempDir(prefix: string): Promise<string> {
    return tempDir(this, `bench-${prefix}`)
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      const failures: unknown[] = []
      for (const fn of this.undo.reverse()) {
        try {
          await fn()
        } catch (e) {
          failures.push(e)
        }
      }
      if (failures.length > 0) throw new AggregateError(failures, 'benchmark teardown failed')
    })())
  }
}

/** Runs `body` with a fresh scope and closes it afterwards, whatever happened. */
export async function withScope<T>(body: (scope: Scope) => Promise<T>): Promise<T> {
  const scope = new Scope()
  try {
    return await body(scope)
  } finally {
    await scope.close()
  }
}
