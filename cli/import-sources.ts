import { readdir, readFile } from 'node:fs/promises'
import { basename, join, relative } from 'node:path'
import type { Msg, NatsConnection } from '@nats-io/nats-core'
import { isAccountKey, resolverReplyOf, subjects } from '../shared/index.ts'
import { claimsOf } from './accounts.ts'
import { CliError } from './cli-error.ts'
import { extractJwt } from './jwt-input.ts'
import { gatherReplies } from './requests.ts'

/** A token found in a source: an account JWT, or an activation token (nats-account-server kept those too). */
export interface Found {
  source: string
  kind: 'account' | 'activation'
  jwt: string
}

/** Something in a source that is not imported, and why. `refused` when it looked meant to be imported. */
export interface Passed {
  source: string
  outcome: 'skipped' | 'refused'
  message: string
}

export interface SourceContents {
  found: Found[]
  passed: Passed[]
}

/**
 * Full resolvers rename deleted accounts to `<id>.jwt.deleted`; nats-account-server may shard its store into
 * `<dir>/<last two characters of the key>/<key>.jwt`, activations under their hash id. Every `*.jwt` file
 * below `dir` is read, whatever the depth, so the three layouts and an nsc store need no option.
 */
async function files(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await files(path)))
    else if (e.isFile() && (e.name.endsWith('.jwt') || e.name.endsWith('.jwt.deleted'))) out.push(path)
  }
  return out.sort()
}

/** What one file holds, judged without the network. */
function classify(source: string, file: string, text: string): Found | Passed {
  if (file.endsWith('.jwt.deleted')) return { source, outcome: 'skipped', message: 'deleted on the full resolver' }
  // up to 2.9.16 a server writes an empty file for an account a lookup did not find (protocol.md §3.1)
  if (text.trim() === '') return { source, outcome: 'skipped', message: 'empty file (a cached "not found")' }
  const jwt = extractJwt(text)
  const claims = jwt === undefined ? undefined : claimsOf(jwt)
  if (jwt === undefined || claims === undefined) return { source, outcome: 'refused', message: 'not a JWT' }
  const type = claims.nats?.type
  if (type === 'activation') return { source, kind: 'activation', jwt }
  if (type !== 'account') return { source, outcome: 'skipped', message: `a ${String(type ?? 'untyped')} JWT, not an account` }
  // a full resolver and nats-account-server name each file after its account: a mismatch is a damaged store
  const named = basename(file, '.jwt')
  if (isAccountKey(named) && named !== claims.sub) {
    return { source, outcome: 'refused', message: `the file is named for ${named} but holds ${String(claims.sub)}` }
  }
  return { source, kind: 'account', jwt }
}

/** Every account JWT and activation token under a directory: a full resolver's `dir`, an nsc store, a nats-account-server store. */
export async function fromDirectory(dir: string): Promise<SourceContents> {
  let paths: string[]
  try {
    paths = await files(dir)
  } catch (e) {
    throw new CliError(`cannot read ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`)
  }
  const out: SourceContents = { found: [], passed: [] }
  for (const path of paths) {
    const r = classify(relative(dir, path) || path, path, await readFile(path, 'utf8'))
    if ('kind' in r) out.found.push(r)
    else out.passed.push(r)
  }
  if (out.found.length === 0 && out.passed.length === 0) throw new CliError(`no *.jwt files under ${dir}`)
  return out
}

/**
 * Our resolver answers PACK in queue group `responder` too (protocol.md §3.5), and its stream looks like a
 * server's. A body that is neither empty nor a 32-byte hash tells them apart: a full server, which compares
 * it with its store hash, streams its whole store; our resolver refuses it in a JSON reply naming itself.
 * nats-server prefers a queue member on the server the request enters, so a retry lands on another member.
 */
const PROBE = 'mesh-import'
const ATTEMPTS = 8
/** nsc pull waits 1 s for each message of a stream; a loaded server may need more. */
const STREAM_IDLE_MS = 3000

type PackAnswer = { from: 'resolver' } | { from: 'server'; lines: string[] } | { from: 'nobody' }

async function packOnce(nc: NatsConnection, firstMs: number): Promise<PackAnswer> {
  const isEnd = (m: Msg) => m.data.length === 0
  const replies = await gatherReplies(nc, subjects.claimsPack, PROBE, {
    strategy: 'stall',
    maxWait: firstMs,
    stall: STREAM_IDLE_MS,
    // our resolver refuses the probe in one JSON reply; a server's stream ends with an empty message
    until: (got) => isEnd(got.at(-1)!) || (got.length === 1 && resolverReplyOf(got[0]!) !== undefined),
  })
  if (replies.length === 1 && resolverReplyOf(replies[0]!) !== undefined) return { from: 'resolver' }
  const ended = replies.length > 0 && isEnd(replies.at(-1)!)
  // servers send one `<id>|<jwt>` per message, but their merge accepts several lines per message
  const lines = replies.flatMap((m) => (isEnd(m) ? [] : m.string().split('\n').filter((l) => l !== '')))
  if (lines.length === 0 && !ended) return { from: 'nobody' }
  if (!ended) throw new CliError(`the PACK stream stopped after ${lines.length} accounts without its end: nothing imported, run again`)
  return { from: 'server', lines }
}

/** One line of a PACK stream: `<id>|<jwt>`, the id being the account the JWT must be for. */
function packLine(line: string, n: number): Found | Passed {
  const source = `pack #${n + 1}`
  const parts = line.split('|')
  if (parts.length !== 2 || !isAccountKey(parts[0])) return { source, outcome: 'refused', message: 'not an <id>|<jwt> line' }
  const [id, jwt] = parts as [string, string]
  const claims = claimsOf(jwt)
  if (claims === undefined) return { source: id, outcome: 'refused', message: 'not a JWT' }
  if (claims.sub !== id) return { source: id, outcome: 'refused', message: `sent as ${id} but holds ${String(claims.sub)}` }
  return { source: id, kind: 'account', jwt }
}

/** What a full-resolver server holds, through PACK as `nsc pull` asks for it (protocol.md §3.5). */
export async function fromPack(nc: NatsConnection, timeoutMs: number): Promise<SourceContents> {
  let resolverOnly = false
  for (let i = 0; i < ATTEMPTS; i++) {
    const a = await packOnce(nc, timeoutMs)
    if (a.from === 'nobody') break
    if (a.from === 'resolver') {
      resolverOnly = true
      continue
    }
    const out: SourceContents = { found: [], passed: [] }
    a.lines.forEach((line, n) => {
      const r = packLine(line, n)
      if ('kind' in r) out.found.push(r)
      else out.passed.push(r)
    })
    return out
  }
  throw new CliError(
    resolverOnly
      ? `only the mesh's resolver answered PACK in ${ATTEMPTS} tries: is a full-resolver server in this system account? (-s can name one)`
      : `no full-resolver server answered PACK within ${timeoutMs} ms`,
  )
}
