import { bootstrap } from './bootstrap.ts'

// `npm run bootstrap [dir]`: writes operator, SYS and creds into dir (default ./.data) unless already there.
const dir = process.argv[2] ?? process.env.BOOTSTRAP_DIR ?? './.data'
const { paths, created } = await bootstrap(dir)
process.stdout.write(`${created ? 'created' : 'reused'} ${paths.dir}\n`)
