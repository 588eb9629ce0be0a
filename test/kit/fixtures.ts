import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Owner } from './owner.ts'
import { newAccount, newOperator, newUser, UNLIMITED, type AccountIdentity, type OperatorIdentity, type UserIdentity } from '../../ops/identities.ts'
import { STORAGE_PERMISSIONS } from '../../ops/permissions.ts'

/** An operator, its system account and a system user, written where servers and services read them. */
export interface Fixture {
  dir: string
  op: OperatorIdentity
  sysUser: UserIdentity
  operatorJwtPath: string
  sysJwtPath: string
  sysCredsPath: string
  /** The storage account of the resolver's jetstream engine (JetStream enabled), and a user of it. */
  mesh: AccountIdentity
  meshCredsPath: string
}

export async function tempDir(t: Owner, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export async function makeFixture(t: Owner, opts: { strict?: boolean } = {}): Promise<Fixture> {
  const op = await newOperator('TEST', opts)
  return fixtureOf(t, op, await newUser(op.systemAccount, 'sys'))
}

/** The trust files of an operator built elsewhere (a strict one, say), with its system user and MESH. */
export async function fixtureOf(t: Owner, op: OperatorIdentity, sysUser: UserIdentity): Promise<Fixture> {
  const dir = await tempDir(t, 'mesh-fx')
  const mesh = await newAccount(op, 'MESH', { limits: { ...UNLIMITED, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } })
  const fx = {
    dir,
    op,
    sysUser,
    operatorJwtPath: join(dir, 'operator.jwt'),
    sysJwtPath: join(dir, 'sys.jwt'),
    sysCredsPath: join(dir, 'sys.creds'),
    mesh,
    meshCredsPath: join(dir, 'resolver-store.creds'),
  }
  await writeFile(fx.meshCredsPath, (await newUser(mesh, 'resolver-store', STORAGE_PERMISSIONS)).creds, { mode: 0o600 })
  await writeFile(fx.operatorJwtPath, op.jwt)
  await writeFile(fx.sysJwtPath, op.systemAccount.jwt)
  await writeFile(fx.sysCredsPath, sysUser.creds, { mode: 0o600 })
  return fx
}

/** Writes a user's creds to a file of its own and returns the path. */
export async function credsFile(fx: Fixture, user: UserIdentity): Promise<string> {
  const path = join(fx.dir, `${user.name}-${user.kp.getPublicKey().slice(0, 8)}.creds`)
  await writeFile(path, user.creds, { mode: 0o600 })
  return path
}
