import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { promisify } from 'node:util'
import { serverVersion } from '../test/kit/nats-server.ts'

const exec = promisify(execFile)

export interface Machine {
  date: string
  nproc: number
  cpu: string
  memoryGb: number
  node: string
  natsServer: string
  os: string
  /** 1-minute load average at the start and end: other work on the machine makes absolute figures noisy. */
  loadStart: number
  loadEnd?: number
}

export async function describeMachine(): Promise<Machine> {
  const natsServer = serverVersion().text
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '')
  return {
    date: new Date().toISOString(),
    nproc: Number((await exec('nproc')).stdout.trim()),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    natsServer,
    os: /PRETTY_NAME="([^"]+)"/.exec(osRelease)?.[1] ?? process.platform,
    loadStart: loadavg()[0]!,
  }
}
