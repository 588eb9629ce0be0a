import { show } from './subjects.ts'

/** jwt's MaxInfoLength: a description or info URL longer than this (in bytes) is refused. */
export const MAX_INFO_LENGTH = 8 * 1024

/** Info.Validate (v2/types.go), for the account and for each export. */
export function infoIssues(at: string, description: unknown, infoUrl: unknown): string[] {
  const issues: string[] = []
  if (typeof description === 'string' && Buffer.byteLength(description) > MAX_INFO_LENGTH) issues.push(`${at}description is too long`)
  if (typeof infoUrl === 'string' && infoUrl !== '') {
    if (Buffer.byteLength(infoUrl) > MAX_INFO_LENGTH) issues.push(`${at}info url is too long`)
    const why = goUrlProblem(infoUrl)
    if (why !== undefined) issues.push(`${at}error parsing info url ${show(infoUrl)}: ${why}`)
  }
  return issues
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/

/**
 * What Go's url.Parse plus jwt's "needs a hostname and a scheme" make of a URL: a scheme, then `//` and a
 * host that is not empty, a numeric port if any, no control characters and only well-formed % escapes.
 * Undefined when Go would accept it.
 */
export function goUrlProblem(raw: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(raw)) return 'invalid control character in URL'
  const scheme = SCHEME.exec(raw)
  if (scheme === null) return 'no hostname or scheme'
  const rest = raw.slice(scheme[0].length).split('#')[0]!
  if (/%(?![0-9A-Fa-f]{2})/.test(rest.split('?')[0]!)) return 'invalid URL escape'
  if (!rest.startsWith('//')) return 'no hostname or scheme'
  const authority = rest.slice(2).split(/[/?]/)[0]!
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1)
  let host = hostPort
  let port = ''
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']')
    if (close < 0) return 'missing ] in host'
    host = hostPort.slice(1, close)
    const after = hostPort.slice(close + 1)
    if (after !== '' && !after.startsWith(':')) return 'invalid port after host'
    port = after.slice(1)
  } else {
    const colon = hostPort.lastIndexOf(':')
    if (colon >= 0) {
      host = hostPort.slice(0, colon)
      port = hostPort.slice(colon + 1)
    }
  }
  if (!/^\d*$/.test(port)) return `invalid port ${show(':' + port)} after host`
  if (/[ {}|\\^`]/.test(host)) return 'invalid character in host name'
  if (host === '') return 'no hostname or scheme'
  return undefined
}
