import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fromSeed } from '@nats-io/nkeys'
import { newAccount, newOperator, newUser, UNLIMITED } from './identities.ts'
import { SERVICE_PERMISSIONS, STORAGE_PERMISSIONS, type MeshServiceName } from './permissions.ts'

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

/**
 * Creates, once, what a deployment needs: an operator with a signing key; the system account SYS signed by
 * it; a system user signed directly by SYS's identity key (so it connects before SYS is resolved); and a
 * demo account with a user. An existing directory is reused untouched.
 */
export async function bootstrap(dir: string, operatorName = 'MESH'): Promise<{ paths: BootstrapPaths; created: boolean }> {
  const paths = bootstrapPaths(dir)
  if (existsSync(paths.operatorJwt)) {
    await writeServiceCreds(paths)
    await writeStorageAccount(paths)
    return { paths, created: false }
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
  await writeServiceCreds(paths)
  await writeStorageAccount(paths)
  // Written last: its presence is what marks the directory as bootstrapped.
  await writeFile(paths.operatorJwt, op.jwt + '\n')
  return { paths, created: true }
}

/**
 * Writes each service's creds file if it is missing, signed by the SYS identity key (keys/sys.nk), with
 * exactly the permissions of ops/permissions.ts. Also run on a reused directory made before they existed.
 */
async function writeServiceCreds(paths: BootstrapPaths): Promise<void> {
  const missing = (Object.keys(paths.serviceCreds) as MeshServiceName[]).filter((n) => !existsSync(paths.serviceCreds[n]))
  if (missing.length === 0) return
  const sysSeed = (await readFile(join(paths.dir, 'keys', 'sys.nk'), 'utf8')).trim()
  const kp = fromSeed(new TextEncoder().encode(sysSeed))
  const sys = { name: 'SYS', kp, id: kp.getPublicKey(), jwt: '' }
  for (const name of missing) {
    await secret(paths.serviceCreds[name], (await newUser(sys, name, SERVICE_PERMISSIONS[name])).creds)
  }
}

/** The system account id and JWT of a bootstrapped directory, for the server configuration. */
export async function readSystemAccount(paths: BootstrapPaths): Promise<{ id: string; jwt: string }> {
  const jwt = (await readFile(paths.sysJwt, 'utf8')).trim()
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string }
  return { id: claims.sub, jwt }
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
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string }
  return { id: claims.sub, jwt }
}
