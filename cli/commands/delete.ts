import { fromSeed, type KeyPair } from '@nats-io/nkeys'
import { nowSeconds, signJwt, subjects } from '../../shared/index.ts'
import { requireAccountKey } from '../accounts.ts'
import { CliError, readNamedFile } from '../cli-error.ts'
import { emit, type Command } from '../context.ts'
import { askResolver } from '../requests.ts'

// An operator seed: `SO` and 56 more base32 characters. nsc's `.nk` files hold just this line.
const OPERATOR_SEED = /\bSO[A-Z2-7]{56}\b/

/** The operator (signing) key in `path`. Errors name the file, never its contents. */
async function operatorKey(path: string): Promise<KeyPair> {
  const text = await readNamedFile(path, 'operator key')
  const seed = OPERATOR_SEED.exec(text)?.[0]
  if (seed === undefined) throw new CliError(`${path} holds no operator seed (SO...)`)
  try {
    return fromSeed(new TextEncoder().encode(seed))
  } catch {
    throw new CliError(`${path} holds no valid operator seed`)
  }
}

/**
 * The request nsc signs for `push --prune` and account removal (protocol.md §6): generic claims with
 * sub == iss == the operator key, no type, and the accounts under `nats`.
 */
export function deleteRequest(kp: KeyPair, accounts: string[], opts: { purgeJetStream?: boolean } = {}): string {
  // purge_jetstream is ours (nats-server ignores it); inside the signed claims, the operator's signature covers it.
  const nats = { accounts, version: 2, ...(opts.purgeJetStream === true ? { purge_jetstream: true } : {}) }
  return signJwt({ sub: kp.getPublicKey(), iat: nowSeconds(), nats }, kp)
}

/** A purge is awaited before the reply: up to 10 s for the streams to go, beside the JetStream queries. */
const purgeTimeout = (timeoutMs: number) => Math.max(timeoutMs, 20_000)

/** `delete <account...>`: an operator-signed delete request on `$SYS.REQ.CLAIMS.DELETE`. */
export const deleteCommand: Command = {
  name: 'delete',
  args: '<account...>',
  summary: 'delete accounts with a request signed by an operator (signing) key',
  options: {
    'operator-key': { type: 'string', value: 'file', help: 'file holding the operator or operator signing-key seed (nsc .nk)' },
    yes: { type: 'boolean', help: 'required: confirms the deletion' },
    'purge-jetstream': {
      type: 'boolean',
      help: "purge the accounts' JetStream streams and consumers first (without it, accounts with streams are refused)",
    },
  },
  async run(ctx) {
    const accounts = [...new Set(ctx.positionals.map(requireAccountKey))]
    const keyPath = ctx.options['operator-key']
    if (typeof keyPath !== 'string') throw new CliError('delete needs --operator-key <file> (an operator signing-key seed)')
    if (ctx.options.yes !== true) throw new CliError(`refusing to delete ${accounts.length} account(s) without --yes`)
    const purge = ctx.options['purge-jetstream'] === true
    const token = deleteRequest(await operatorKey(keyPath), accounts, { purgeJetStream: purge })
    // Not $SYS.REQ.CLAIMS.DELETE: servers act on that one at once, before any purge and even when we refuse.
    // The notifier forwards the request to them once the resolver accepted it.
    const r = await askResolver(await ctx.nats(), subjects.resolverDelete, token, purge ? purgeTimeout(ctx.global.timeoutMs) : ctx.global.timeoutMs)
    if (r.error !== undefined) {
      throw new CliError(`${r.error.description}${r.error.reason ? ` (${r.error.reason})` : ''}`)
    }
    const message = (r.data as { message?: string } | undefined)?.message ?? 'deleted'
    emit(ctx, { accounts, ok: true, message }, () => `${message}\n`)
    return 0
  },
}
