import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fromSeed } from '@nats-io/nkeys'
import { isTrustedIssuer, peekClaims, trustAnchorFrom, type TrustAnchor } from '../shared/index.ts'
import { newAccount, newOperator, newUser, UNLIMITED } from './identities.ts'
import { SERVICE_PERMISSIONS, STORAGE_PERMISSIONS, type MeshServiceName } from './permissions.ts'
import { BootstrapError, chooseUserSigner, readSeeds, sysAccountFrom, sysUserRefusal, type SysAccount } from './sys-user-signer.ts'

/** Where a bootstrapped deployment keeps its identities. Seeds and creds are written 0600. */
export interface BootstrapPaths {
  dir: string
  operatorJwt: string
  /** The operator signing key seed: what the signer needs for managed accounts. */
  signingSeed: string
  sysJwt: string
  sysCreds: string
  demoJwt: string
  demoCreds: string
  /** One least-privileged system-account user per service (ops/permissions.ts). */
  serviceCreds: Record<MeshServiceName, string>
  /** The storage account MESH (JetStream enabled) of the resolver's jetstream engine, and its user. */
  meshJwt: string
  storeCreds: string
}

export function bootstrapPaths(dir: string): BootstrapPaths {
  const d = resolve(dir)
  return {
    dir: d,
    operatorJwt: join(d, 'operator.jwt'),
    signingSeed: join(d, 'keys', 'operator-signing.nk'),
    sysJwt: join(d, 'sys.jwt'),
    sysCreds: join(d, 'sys.creds'),
    demoJwt: join(d, 'demo.jwt'),
    demoCreds: join(d, 'demo.creds'),
    serviceCreds: {
      resolver: join(d, 'resolver.creds'),
      signer: join(d, 'signer.creds'),
      notifier: join(d, 'notifier.creds'),
    },
    meshJwt: join(d, 'mesh.jwt'),
    storeCreds: join(d, 'resolver-store.creds'),
  }
}

const secret = async (path: string, text: string) => {
  await writeFile(path, text, { mode: 0o600 })
  await chmod(path, 0o600) // writeFile keeps the mode of a file that already exists
}

export interface BootstrapResult {
  paths: BootstrapPaths
  created: boolean
  /** What was written or replaced in a reused directory, one line each. */
  notes: string[]
}

/**
 * Creates, once, what a deployment needs: an operator with a signing key; the system account SYS signed by
 * it; a system user signed directly by SYS's identity key (so it connects before SYS is resolved); and a
 * demo account with a user. An existing directory (a previous run, or nsc's identities) is reused: only
 * creds that are missing, or that its nats-servers would refuse, are written. Throws a BootstrapError
 * naming what is missing rather than write creds the servers refuse.
 */
export async function bootstrap(dir: string, operatorName = 'MESH'): Promise<BootstrapResult> {
  const paths = bootstrapPaths(dir)
  if (existsSync(paths.operatorJwt)) {
    const notes = await ensureSysCreds(paths)
    await writeStorageAccount(paths)
    return { paths, created: false, notes }
  }
  await mkdir(join(paths.dir, 'keys'), { recursive: true, mode: 0o700 })
  const op = await newOperator(operatorName)
  const sysUser = await newUser(op.systemAccount, 'sys')
  const demo = await newAccount(op, 'DEMO')
  const demoUser = await newUser(demo, 'demo')
  const seed = (kp: { getSeed(): Uint8Array }) => new TextDecoder().decode(kp.getSeed()) + '\n'

  await secret(join(paths.dir, 'keys', 'operator.nk'), seed(op.kp))
  await secret(paths.signingSeed, seed(op.signingKp))
  await secret(join(paths.dir, 'keys', 'sys.nk'), seed(op.systemAccount.kp))
  await secret(join(paths.dir, 'keys', 'demo.nk'), seed(demo.kp))
  await secret(paths.sysCreds, sysUser.creds)
  await secret(paths.demoCreds, demoUser.creds)
  await writeFile(paths.sysJwt, op.systemAccount.jwt + '\n')
  await writeFile(paths.demoJwt, demo.jwt + '\n')
  for (const name of Object.keys(paths.serviceCreds) as MeshServiceName[]) {
    await secret(paths.serviceCreds[name], (await newUser(op.systemAccount, name, SERVICE_PERMISSIONS[name])).creds)
  }
  await writeStorageAccount(paths)
  // Written last: its presence is what marks the directory as bootstrapped.
  await writeFile(paths.operatorJwt, op.jwt + '\n')
  return { paths, created: true, notes: [] }
}

/** The user JWT inside a creds file. */
const credsJwt = (text: string) => /-{3,}[^\n]*JWT-{3,}\s*\n\s*(\S+)/.exec(text)?.[1] ?? ''

async function readTrust(paths: BootstrapPaths): Promise<{ trust: TrustAnchor; sys: SysAccount }> {
  if (!existsSync(paths.sysJwt)) {
    const missing = [paths.sysJwt, ...Object.values(paths.serviceCreds)].filter((p) => !existsSync(p))
    throw new BootstrapError(`${paths.operatorJwt} exists but ${missing.join(', ')} do not; the system account jwt is needed`)
  }
  let trust: TrustAnchor
  try {
    trust = trustAnchorFrom(await readFile(paths.operatorJwt, 'utf8'))
  } catch (e) {
    throw new BootstrapError(`${paths.operatorJwt} is not a valid operator jwt (${(e as Error).message})`)
  }
  let sys: SysAccount
  try {
    sys = sysAccountFrom(await readFile(paths.sysJwt, 'utf8'))
  } catch (e) {
    throw new BootstrapError(`${paths.sysJwt} is not a valid account jwt (${(e as Error).message})`)
  }
  if (trust.systemAccount !== undefined && trust.systemAccount !== sys.id) {
    throw new BootstrapError(`${paths.sysJwt} is account ${sys.id}, but the operator's system account is ${trust.systemAccount}`)
  }
  const iss = peekClaims(sys.jwt).iss
  if (!isTrustedIssuer(iss, trust)) {
    const why = trust.strictSigningKeys && iss === trust.operatorKey ? ' (the operator requires signing keys: re-sign it with one)' : ''
    throw new BootstrapError(`${paths.sysJwt} is signed by ${iss}, which the operator does not trust${why}`)
  }
  return { trust, sys }
}

/**
 * Writes the service creds (and sys.creds) that are missing or that servers would refuse, signed by a key
 * servers admit (ops/sys-user-signer.ts), with exactly the permissions of ops/permissions.ts; sys.creds is
 * written only to replace an unusable one. Returns what it did.
 */
async function ensureSysCreds(paths: BootstrapPaths): Promise<string[]> {
  const { trust, sys } = await readTrust(paths)
  const wanted: { name: string; path: string; permissions?: { pub: string[]; sub: string[] } }[] = [
    ...(Object.keys(paths.serviceCreds) as MeshServiceName[]).map((n) => ({ name: n, path: paths.serviceCreds[n], permissions: SERVICE_PERMISSIONS[n] })),
    { name: 'sys', path: paths.sysCreds },
  ]
  const todo: { name: string; path: string; permissions?: { pub: string[]; sub: string[] }; why: string }[] = []
  for (const w of wanted) {
    if (!existsSync(w.path)) {
      if (w.permissions !== undefined) todo.push({ ...w, why: 'missing' })
      continue
    }
    const refusal = sysUserRefusal(credsJwt(await readFile(w.path, 'utf8')), sys, trust)
    if (refusal !== undefined) todo.push({ ...w, why: `servers would refuse it: ${refusal}` })
  }
  if (todo.length === 0) return []
  const keysDir = join(paths.dir, 'keys')
  let signer
  try {
    signer = chooseUserSigner(trust, sys, await readSeeds(keysDir), keysDir)
  } catch (e) {
    const files = todo.map((w) => `${w.path} (${w.why})`).join(', ')
    throw new BootstrapError(`cannot write ${files}: ${(e as Error).message}`)
  }
  const notes: string[] = []
  if (signer.resignedSys !== undefined) {
    await secret(join(keysDir, 'sys-signing.nk'), new TextDecoder().decode(signer.kp.getSeed()) + '\n')
    await writeFile(paths.sysJwt, signer.resignedSys + '\n')
    notes.push(`${signer.note}; its seed is in keys/sys-signing.nk. Preload the new sys.jwt on every nats-server and import it into nsc (nsc import account --file sys.jwt)`)
  }
  const account = { name: 'SYS', kp: signer.kp, id: sys.id, jwt: '' }
  for (const w of todo) {
    const user = await newUser(account, w.name, w.permissions, signer.identity ? undefined : signer.kp)
    await secret(w.path, user.creds)
    notes.push(`wrote ${w.path} (${w.why}), signed by ${signer.identity ? 'the SYS identity key' : `SYS signing key ${signer.kp.getPublicKey()}`}`)
  }
  return notes
}

/** The system account id and JWT of a bootstrapped directory, for the server configuration. */
export async function readSystemAccount(paths: BootstrapPaths): Promise<{ id: string; jwt: string }> {
  const jwt = (await readFile(paths.sysJwt, 'utf8')).trim()
  return { id: peekClaims(jwt).sub, jwt }
}

/** JetStream limits of the storage account: without them nats-server gives an account no JetStream. */
const STORAGE_LIMITS = { ...UNLIMITED, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 }

/**
 * Creates the storage account MESH (signed by the operator signing key, JetStream enabled) and the
 * resolver's user of it, `resolver-store.creds`, unless they exist. Also run on a reused directory made
 * before they existed; needs the signing key seed there.
 */
async function writeStorageAccount(paths: BootstrapPaths): Promise<void> {
  if (existsSync(paths.meshJwt) || !existsSync(paths.signingSeed)) return
  const signingKp = fromSeed(new TextEncoder().encode((await readFile(paths.signingSeed, 'utf8')).trim()))
  const mesh = await newAccount({ signingKp }, 'MESH', { limits: STORAGE_LIMITS })
  await secret(join(paths.dir, 'keys', 'mesh.nk'), new TextDecoder().decode(mesh.kp.getSeed()) + '\n')
  await secret(paths.storeCreds, (await newUser(mesh, 'resolver-store', STORAGE_PERMISSIONS)).creds)
  await writeFile(paths.meshJwt, mesh.jwt + '\n')
}

/** The storage account's id and JWT, to preload beside SYS; undefined when the directory has none. */
export async function readStorageAccount(paths: BootstrapPaths): Promise<{ id: string; jwt: string } | undefined> {
  if (!existsSync(paths.meshJwt)) return undefined
  const jwt = (await readFile(paths.meshJwt, 'utf8')).trim()
  return { id: peekClaims(jwt).sub, jwt }
}
