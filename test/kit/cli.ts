import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const MESH_BIN = join(ROOT, 'cli', 'mesh.mjs')

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI as a child process, the way the `mesh` bin does, from `cwd` with only PATH in its environment. */
export function runMesh(args: string[], opts: { cwd?: string; env?: Record<string, string>; argv0?: string[] } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...(opts.argv0 ?? [MESH_BIN]), ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { PATH: process.env.PATH ?? '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    proc.on('error', reject)
    proc.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Runs `npm run bootstrap [dir]` (ops/bootstrap-main.ts) as a child process; stdout and stderr together. */
export async function runBootstrap(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'ops/bootstrap-main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const [code] = (await once(proc, 'exit')) as [number | null]
  return { code, out }
}
