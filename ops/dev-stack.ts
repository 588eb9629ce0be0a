import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator, type Msg } from '@nats-io/nats-core'
import { gather, resolverReplyOf, subjects } from '../shared/index.ts'
import { bootstrap, readStorageAccount, readSystemAccount } from './bootstrap.ts'
import { renderServerConf } from './server-conf.ts'
import { StatusBoard } from './status-board.ts'

// `npm start`: one nats-server and the three services, from ./.data (created on the first run).
const ROOT = fileURLToPath(new URL('../', import.meta.url))
const dataDir = join(ROOT, '.data')
const port = Number(process.env.NATS_PORT ?? 4222)
const url = `nats://127.0.0.1:${port}`
// Once the services are up, the status board keeps one live line per service under these messages.
let board: StatusBoard | undefined
const say = (line: string) => (board === undefined ? void process.stdout.write(`[dev] ${line}\n`) : board.above(`[dev] ${line}`))

// The nats-server to run: $NATS_SERVER; else the newest release ../shared/tools/nats-servers.sh provides (what
// CI tests first) on machines that have that tool; else `nats-server` on PATH or in /usr/sbin (Debian's).
function natsServerBinary(): string {
  if (process.env.NATS_SERVER) return process.env.NATS_SERVER
  const tool = join(ROOT, '..', 'shared', 'tools', 'nats-servers.sh')
  if (existsSync(tool)) {
    try {
      const latest = execFileSync(tool, ['--latest'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
      if (latest !== '') return latest
    } catch {
      // the tool could not provide one (no archive, no writable cache): use the one installed
    }
  }
  process.env.PATH = `${process.env.PATH ?? ''}:/usr/sbin`
  return 'nats-server'
}
const natsServer = natsServerBinary()

// A taken port would only show as nats-server exiting 1: name it, and the way out, in one line.
async function portTaken(p: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    probe.listen(p, '127.0.0.1', () => probe.close(() => resolve(undefined)))
  })
}
const taken = await portTaken(port)
if (taken !== undefined) {
  process.stderr.write(`[dev] cannot listen on 127.0.0.1:${port} (${taken}): is another nats-server running? Set NATS_PORT to a free port, e.g. NATS_PORT=14222 npm start\n`)
  process.exit(1)
}

const { paths, created } = await bootstrap(dataDir)
say(`${created ? 'created' : 'reusing'} ${dataDir}`)
const sys = await readSystemAccount(paths)
const storage = await readStorageAccount(paths)
const logDir = join(dataDir, 'logs')
await mkdir(join(dataDir, 'jwt'), { recursive: true })
await mkdir(logDir, { recursive: true })
const confPath = join(dataDir, 'nats-server.conf')
await writeFile(
  confPath,
  renderServerConf({
    serverName: 'dev',
    port,
    operatorJwtPath: paths.operatorJwt,
    systemAccount: sys.id,
    systemAccountJwt: sys.jwt,
    resolver: { type: 'cache', dir: join(dataDir, 'jwt') },
    ...(storage === undefined ? {} : { preload: { [storage.id]: storage.jwt } }),
  }),
)

const children: { name: string; proc: ChildProcess }[] = []
function start(name: string, cmd: string, args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' })
  // Each child in its own process group, so Ctrl-C reaches only us and stopAll() stops them in order: a
  // nats-server interrupted together with the services would leave them nothing to drain to.
  const proc = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  proc.stdout?.pipe(log)
  proc.stderr?.pipe(log)
  // The log stream may not be flushed when we exit right after a child died: keep its last words to print.
  let last = ''
  proc.stderr?.on('data', (d: Buffer) => {
    const lines = d.toString().trim().split('\n')
    last = lines.at(-1) ?? last
  })
  proc.on('exit', (code, signal) => {
    if (!stopping) {
      say(`${name} exited (${signal ?? code})${last === '' ? '' : `: ${last.trim()}`}; see ${join(logDir, `${name}.log`)}`)
      void stopAll(1)
    }
  })
  children.push({ name, proc })
  return proc
}

let stopping = false
async function stopAll(code: number): Promise<void> {
  if (stopping) return
  stopping = true
  board?.stop()
  // Services first, nats-server last, so services drain their replies while the server is still there.
  for (const { name, proc } of [...children].reverse()) {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM')
      await once(proc, 'exit')
      say(`stopped ${name}`)
    }
  }
  process.exit(code)
}
process.on('SIGINT', () => void stopAll(0))
// Should we die some other way, take the children along rather than leave them running detached.
process.on('exit', () => {
  for (const { proc } of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
})
process.on('SIGTERM', () => void stopAll(0))

const serviceEnv = {
  NATS_URL: url,
  NATS_CREDS: paths.sysCreds,
  OPERATOR_JWT: paths.operatorJwt,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
}
start('nats-server', natsServer, ['-c', confPath])
const tsx = (svc: string) => [process.execPath, ['--import', 'tsx', `services/${svc}/main.ts`]] as const
start('resolver', ...tsx('resolver'), {
  ...serviceEnv,
  NATS_CREDS: paths.serviceCreds.resolver,
  RESOLVER_DATA_DIR: join(dataDir, 'resolver'),
  SYSTEM_ACCOUNT_JWT: paths.sysJwt,
})
start('signer', ...tsx('signer'), { ...serviceEnv, NATS_CREDS: paths.serviceCreds.signer, SIGNER_SEED_FILE: paths.signingSeed })
start('notifier', ...tsx('notifier'), { ...serviceEnv, NATS_CREDS: paths.serviceCreds.notifier })

// Wait for the resolver to answer, then make sure the demo account is in the store. The nats-server answers
// the push too (and first, "jwt update cache skipped"): only the resolver's reply tells whether it was stored.
const nc = await connect({
  servers: url,
  authenticator: credsAuthenticator(new TextEncoder().encode(await readFile(paths.sysCreds, 'utf8'))),
  maxReconnectAttempts: -1,
  waitOnFirstConnect: true,
})
const demoJwt = (await readFile(paths.demoJwt, 'utf8')).trim()
async function pushDemo(): Promise<string | undefined> {
  const replies = await gather(nc, subjects.claimsUpdate, demoJwt, { strategy: 'timer', maxWait: 2000, until: (got) => got.some(isOurs) })
  return replies.find(isOurs)?.string()
}
const isOurs = (m: Msg) => resolverReplyOf(m) !== undefined
for (let i = 0; ; i++) {
  const reply = await pushDemo()
  if (reply !== undefined) {
    say(`demo account: ${reply}`)
    break
  }
  if (i === 30) throw new Error('the resolver did not answer the demo account push')
  await new Promise((r) => setTimeout(r, 500))
}
say(`nats-server ${execFileSync(natsServer, ['--version'], { encoding: 'utf8' }).trim().replace(/^nats-server:\s*/, '')} on ${url}; logs in ${logDir}`)
say(`connect as the demo user:  nats --server ${url} --creds ${paths.demoCreds} sub '>'`)
say(`system user (admin, nsc push, nats micro ls):  --creds ${paths.sysCreds}`)
say('Ctrl-C stops everything')
board = new StatusBoard(nc, process.stdout)
board.start()
