import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`; resolves with its exit code. */
export async function stopProcess(proc: ChildProcess, graceMs = 5000): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode
  const exited = once(proc, 'exit')
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
  return proc.exitCode
}
