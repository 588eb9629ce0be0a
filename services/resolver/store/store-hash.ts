import { createHash } from 'node:crypto'

export const STORE_HASH_BYTES = 32

/**
 * nats-server's PACK store hash (protocol.md §3.5): the XOR over every stored JWT of sha256 of its exact
 * bytes. XOR makes it order-independent and lets one write update it in O(1): the old version is XORed out
 * and the new one in.
 */
export class StoreHash {
  private readonly value: Buffer

  constructor(initial?: Uint8Array) {
    this.value = Buffer.alloc(STORE_HASH_BYTES)
    if (initial?.length === STORE_HASH_BYTES) this.value.set(initial)
  }

  /** Adds a JWT to the hash, or removes it: XOR is its own inverse. */
  toggle(jwt: string): void {
    const d = createHash('sha256').update(jwt).digest()
    for (let i = 0; i < STORE_HASH_BYTES; i++) this.value[i]! ^= d[i]!
  }

  /** A copy, safe to send or keep. */
  digest(): Buffer {
    return Buffer.from(this.value)
  }

  equals(other: Uint8Array): boolean {
    return other.length === STORE_HASH_BYTES && this.value.equals(other)
  }
}
