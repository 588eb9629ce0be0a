// The hostile-input suite once more, with the resolver on the jetstream engine (one JetStream server, R1):
// the same corpus and random requests, and afterwards the stream itself is checked (test/kit/hostile-store.ts).
process.env.MESH_HOSTILE_STORE = 'jetstream'
await import('./hostile.test.ts')
