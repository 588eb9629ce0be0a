import { runCli } from './cli.ts'

// `mesh <command>` (package.json bin, cli/mesh.mjs) and `npm run mesh -- <command>`: the admin CLI.
// The only place that reads process.env and argv.
const exitCode = await runCli(
  process.argv.slice(2),
  { natsUrl: process.env.NATS_URL, natsCreds: process.env.NATS_CREDS, cwd: process.cwd() },
  {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    errIsTTY: process.stderr.isTTY === true,
  },
)
process.exitCode = exitCode
