import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * What one benchmark case opened (servers, services, connections, temp dirs), closed in reverse order of
 * opening, like tap's teardowns: a case that fails half-way still leaves nothing running.
 */
export class Scope {
  private readonly undo: (() => unknown)[] = []
  private closing: Promise<void> | undefined

  /** Registers `fn` to run when the scope closes (last registered runs first). */
  defer(fn: () => unknown): void {
    this.undo.push(fn)
  }

  /** A fresh temporary directory, removed when the scope closes. */
  async tempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `bench-${prefix}-`))
    this.defer(() => rm(dir, { recursive: true, force: true }))
    return dir
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
