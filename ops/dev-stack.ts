import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { bootstrap, readSystemAccount } from './bootstrap.ts'
import { renderServerConf } from './server-conf.ts'

// `npm start`: one nats-server and the three services, from ./.data (created on the first run).
const ROOT = fileURLToPath(new URL('../', import.meta.url))
const dataDir = join(ROOT, '.data')
const port = Number(process.env.NATS_PORT ?? 4222)
const url = `nats://127.0.0.1:${port}`
const say = (line: string) => process.stdout.write(`[dev] ${line}\n`)

const { paths, created } = await bootstrap(dataDir)
say(`${created ? 'created' : 'reusing'} ${dataDir}`)
const sys = await readSystemAccount(paths)
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
  }),
)

const children: { name: string; proc: ChildProcess }[] = []
function start(name: string, cmd: string, args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' })
  const proc = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stdout?.pipe(log)
  proc.stderr?.pipe(log)
  proc.on('exit', (code, signal) => {
    if (!stopping) {
      say(`${name} exited (${signal ?? code}); see ${join(logDir, `${name}.log`)}`)
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
process.on('SIGTERM', () => void stopAll(0))

const serviceEnv = {
  NATS_URL: url,
  NATS_CREDS: paths.sysCreds,
  OPERATOR_JWT: paths.operatorJwt,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
}
start('nats-server', 'nats-server', ['-c', confPath])
const tsx = (svc: string) => [process.execPath, ['--import', 'tsx', `services/${svc}/main.ts`]] as const
start('resolver', ...tsx('resolver'), {
  ...serviceEnv,
  NATS_CREDS: paths.serviceCreds.resolver,
  RESOLVER_DATA_DIR: join(dataDir, 'resolver'),
  SYSTEM_ACCOUNT_JWT: paths.sysJwt,
})
start('signer', ...tsx('signer'), { ...serviceEnv, NATS_CREDS: paths.serviceCreds.signer, SIGNER_SEED_FILE: paths.signingSeed })
start('notifier', ...tsx('notifier'), { ...serviceEnv, NATS_CREDS: paths.serviceCreds.notifier })

// Wait for the resolver to answer, then make sure the demo account is in the store.
const nc = await connect({
  servers: url,
  authenticator: credsAuthenticator(new TextEncoder().encode(await readFile(paths.sysCreds, 'utf8'))),
  maxReconnectAttempts: -1,
  waitOnFirstConnect: true,
})
const demoJwt = (await readFile(paths.demoJwt, 'utf8')).trim()
for (let i = 0; ; i++) {
  try {
    const reply = await nc.request(subjects.claimsUpdate, demoJwt, { timeout: 2000 })
    say(`demo account: ${reply.string()}`)
    break
  } catch (err) {
    if (i === 30) throw err
    await new Promise((r) => setTimeout(r, 500))
  }
}
await nc.close()

say(`nats-server on ${url}; logs in ${logDir}`)
say(`connect as the demo user:  nats --server ${url} --creds ${paths.demoCreds} sub '>'`)
say(`system user (admin, nsc push, nats micro ls):  --creds ${paths.sysCreds}`)
say('Ctrl-C stops everything')
