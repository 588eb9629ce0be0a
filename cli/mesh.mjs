#!/usr/bin/env node
// The `mesh` executable (package.json bin): runs the TypeScript CLI through tsx, as the services run.
import { register } from 'tsx/esm/api'

register()
await import('./main.ts')
