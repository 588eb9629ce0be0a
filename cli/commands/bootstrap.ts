import { bootstrap, readSystemAccount } from '../../ops/bootstrap.ts'
import { BootstrapError } from '../../ops/sys-user-signer.ts'
import { CliError } from '../cli-error.ts'
import { emit, type Command } from '../context.ts'
import { renderTable } from '../table.ts'

/**
 * `bootstrap [--dir]`: what `npm run bootstrap` does, then where each file went. Needs no NATS. A reused
 * directory that cannot get creds its servers accept fails (exit 1) with the bootstrap's reason.
 */
export const bootstrapCommand: Command = {
  name: 'bootstrap',
  summary: 'create the operator, SYS, the system user and service creds in a directory (once)',
  options: { dir: { type: 'string', value: 'dir', help: 'where to write them (default ./.data)' } },
  async run(ctx) {
    const dir = typeof ctx.options.dir === 'string' ? ctx.options.dir : './.data'
    const { paths, created, notes } = await bootstrap(dir).catch((e: unknown) => {
      throw e instanceof BootstrapError ? new CliError(`bootstrap: ${e.message}`) : e
    })
    const sys = await readSystemAccount(paths)
    const files: [string, string][] = [
      ['operator jwt', paths.operatorJwt],
      ['operator signing key (seed)', paths.signingSeed],
      ['system account jwt', paths.sysJwt],
      ['system user creds', paths.sysCreds],
      ['demo account jwt', paths.demoJwt],
      ['demo user creds', paths.demoCreds],
      ...Object.entries(paths.serviceCreds).map(([name, p]): [string, string] => [`${name} creds`, p]),
      ['storage account jwt (MESH, JetStream)', paths.meshJwt],
      ['resolver storage creds (RESOLVER_JS_CREDS)', paths.storeCreds],
    ]
    emit(ctx, { created, dir: paths.dir, systemAccount: sys.id, paths, notes }, () =>
      `${created ? 'created' : 'reused'} ${paths.dir} (system account ${sys.id})\n` +
        notes.map((n) => `${n}\n`).join('') +
        renderTable(['what', 'path'], files) +
        'seeds and creds are written 0600; keep the directory private\n',
    )
    return 0
  },
}
