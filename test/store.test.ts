import t from 'tap'
import { LevelStore } from '../services/resolver/store/level.ts'
import { storeContract } from './store/contract.ts'

await storeContract(t, 'level', (_t, dir, opts) => LevelStore.open(dir, opts))
