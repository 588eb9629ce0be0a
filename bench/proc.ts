import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'

const exec = promisify(execFile)

const CLK_TCK = 100

/**
 * Resident set size of a process in MB (VmRSS), its peak (VmHWM), and how it splits: private memory
 * (RssAnon) and mapped files (RssFile: for LevelDB, its table files mapped read-only, which is page cache
 * the kernel can take back).
 */
export async function memoryOf(pid: number): Promise<{ rssMb: number; peakMb: number; anonMb: number; fileMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024, anonMb: kb('RssAnon') / 1024, fileMb: kb('RssFile') / 1024 }
}

/** CPU time a process has used so far (user + system), in milliseconds. */
export async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces) start at ") ".
  const rest = stat.slice(stat.lastIndexOf(') ') + 2).split(' ')
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK
}

/** CPU used by a group of processes over an interval: call `stop()` for the milliseconds per pid. */
export async function cpuMeter(pids: Record<string, number>): Promise<() => Promise<Record<string, number>>> {
  const before = Object.fromEntries(await Promise.all(Object.entries(pids).map(async ([k, pid]) => [k, await cpuMsOf(pid)] as const)))
  return async () =>
    Object.fromEntries(await Promise.all(Object.entries(pids).map(async ([k, pid]) => [k, (await cpuMsOf(pid)) - before[k]!] as const)))
}

/** Bytes a directory tree takes on disk (allocated blocks) and its files' apparent size, from du(1). */
export async function diskUsage(dir: string): Promise<{ diskBytes: number; apparentBytes: number }> {
  const du = async (...args: string[]) => Number((await exec('du', [...args, dir])).stdout.split(/\s/)[0])
  return { diskBytes: await du('-s', '--block-size=1'), apparentBytes: await du('-sb') }
}
