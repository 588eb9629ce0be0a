import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys'
import { encodeAccount, encodeOperator, encodeUser, fmtCreds, type Account } from '@nats-io/jwt'

/** Every limit unlimited: without limits an account admits no connection at all (protocol.md §4.11). */
export const UNLIMITED = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
} as const

export interface OperatorIdentity {
  name: string
  kp: KeyPair
  signingKp: KeyPair
  jwt: string
  systemAccount: AccountIdentity
}

export interface AccountIdentity {
  name: string
  kp: KeyPair
  id: string
  jwt: string
}

export interface UserIdentity {
  name: string
  kp: KeyPair
  jwt: string
  creds: string
}

/**
 * An operator with one signing key and its system account, as `nsc init` would make them. The system
 * account is signed by the operator signing key. `strict` requires signing keys
 * (`nsc edit operator --require-signing-keys`); nsc then signs the operator JWT itself with the operator's
 * signing key, which `signedBy: 'signing-key'` reproduces.
 */
export async function newOperator(
  name: string,
  opts: { strict?: boolean; signedBy?: 'identity' | 'signing-key' } = {},
): Promise<OperatorIdentity> {
  const kp = createOperator()
  const signingKp = createOperator()
  const sysKp = createAccount()
  const jwt = await encodeOperator(
    name,
    kp,
    {
      signing_keys: [signingKp.getPublicKey()],
      system_account: sysKp.getPublicKey(),
      ...(opts.strict ? { strict_signing_key_usage: true } : {}),
    } as Record<string, unknown>,
    opts.signedBy === 'signing-key' ? { signer: signingKp } : {},
  )
  const op = { name, kp, signingKp, jwt } as OperatorIdentity
  op.systemAccount = await newAccount(op, 'SYS', {}, sysKp)
  return op
}

/** An account signed by the operator's signing key, unlimited unless `nats` says otherwise. */
export async function newAccount(
  op: Pick<OperatorIdentity, 'signingKp'>,
  name: string,
  nats: Partial<Account> = {},
  kp: KeyPair = createAccount(),
): Promise<AccountIdentity> {
  const jwt = await encodeAccount(name, kp, { limits: { ...UNLIMITED }, ...nats }, { signer: op.signingKp })
  return { name, kp, id: kp.getPublicKey(), jwt }
}

/**
 * A user signed directly by the account's identity key: until the system account resolves, a server admits
 * only such users of it (protocol.md §8, SYS bootstrap). With `signer`, one of the account's signing keys
 * signs instead (the JWT then names the account in `issuer_account`): under an operator that requires
 * signing keys, servers admit only such users. With `permissions`, the user may publish and subscribe only
 * to the listed subjects (user JWT `pub`/`sub` allow lists); no response permission is set.
 */
export async function newUser(
  account: AccountIdentity,
  name: string,
  permissions?: { pub: string[]; sub: string[] },
  signer?: KeyPair,
): Promise<UserIdentity> {
  const kp = createUser()
  const perms = permissions && { pub: { allow: [...permissions.pub] }, sub: { allow: [...permissions.sub] } }
  const jwt =
    signer === undefined ? await encodeUser(name, kp, account.kp, perms) : await encodeUser(name, kp, account.id, perms, { signer })
  return { name, kp, jwt, creds: new TextDecoder().decode(fmtCreds(jwt, kp)) }
}
