import { readFileSync } from 'node:fs'

/** The mesh's SemVer version, reported by every service in `$SRV` replies. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version
