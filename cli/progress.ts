import type { Io } from './context.ts'

export interface Progress {
  tick(): void
  done(): void
}

const WIDTH = 30
const EVERY_MS = 100

/**
 * A one-line progress bar on stderr, redrawn at most every 100 ms, erased when done. Only on a terminal and
 * for more than one item: piped or scripted runs see nothing of it.
 */
export function progressBar(io: Io, total: number, label: string): Progress {
  if (!io.errIsTTY || total < 2) return { tick() {}, done() {} }
  let count = 0
  let drawn = 0
  const draw = () => {
    const filled = Math.round((count / total) * WIDTH)
    io.err(`\r[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${count}/${total} ${label}`)
    drawn = Date.now()
  }
  draw()
  return {
    tick() {
      count++
      if (Date.now() - drawn >= EVERY_MS || count === total) draw()
    },
    done: () => io.err('\r\x1b[K'),
  }
}
