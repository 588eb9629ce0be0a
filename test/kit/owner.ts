/**
 * What a kit function hands the things it opens (servers, processes, connections, temp dirs) to, to be
 * closed at the end: a tap test (`t.teardown`), or the bench's scope. Tests and bench start the same way.
 */
export interface Owner {
  teardown(fn: () => unknown): void
}
