import { readdir, readFile, stat } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { CliError } from './cli-error.ts'
import { claimsOf } from './accounts.ts'

/** One JWT to push and where it came from: a file path, or `argument` for a token given on the command line. */
export interface JwtInput {
  source: string
  jwt: string
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
// nsc's armored form: `-----BEGIN NATS ACCOUNT JWT-----`, the token, `------END NATS ACCOUNT JWT------`.
const ARMORED = /-----BEGIN NATS [A-Z ]*JWT-----\s*([A-Za-z0-9_.-]+)\s*-+END NATS/

/** The JWT a file holds, bare or armored; undefined when there is none. */
export function extractJwt(text: string): string | undefined {
  const armored = ARMORED.exec(text)?.[1]
  if (armored !== undefined) return JWT_SHAPE.test(armored) ? armored : undefined
  const bare = text.trim()
  return JWT_SHAPE.test(bare) ? bare : undefined
}

async function jwtFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await jwtFiles(path)))
    else if (e.isFile() && e.name.endsWith('.jwt')) out.push(path)
  }
  return out.sort()
}

/**
 * The account JWTs under a directory, such as an nsc store (`<operator>/accounts/<name>/<name>.jwt`):
 * every `*.jwt` file, recursively, keeping those whose claims are an account's (operator and user JWTs of
 * the same store are left out).
 */
async function fromDirectory(dir: string): Promise<JwtInput[]> {
  const out: JwtInput[] = []
  for (const path of await jwtFiles(dir)) {
    const jwt = extractJwt(await readFile(path, 'utf8'))
    if (jwt !== undefined && claimsOf(jwt)?.nats?.type === 'account') out.push({ source: relative(dir, path) || path, jwt })
  }
  if (out.length === 0) throw new CliError(`no account JWTs found under ${dir}`)
  return out
}

/** What `push` sends: a JWT given as the argument, the one in a file, or every account JWT under a directory. */
export async function readJwtInputs(arg: string): Promise<JwtInput[]> {
  let kind: 'file' | 'dir' | undefined
  try {
    const s = await stat(arg)
    kind = s.isDirectory() ? 'dir' : 'file'
  } catch (e) {
    // A JWT given as the argument is no path: usually ENOENT, ENAMETOOLONG when it is long.
    const code = (e as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'ENAMETOOLONG') throw new CliError(`cannot read ${arg.slice(0, 80)} (${code})`)
  }
  if (kind === undefined) {
    if (JWT_SHAPE.test(arg.trim())) return [{ source: 'argument', jwt: arg.trim() }]
    throw new CliError(`${arg.slice(0, 80)} is neither a JWT nor a file or directory`)
  }
  if (kind === 'dir') return fromDirectory(arg)
  const jwt = extractJwt(await readFile(arg, 'utf8'))
  if (jwt === undefined) throw new CliError(`${arg} holds no JWT`)
  return [{ source: arg, jwt }]
}
