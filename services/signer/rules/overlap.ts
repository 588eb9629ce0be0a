/**
 * Finds subjects contained in another subject of the same list, under jwt's containment (see subjects.ts).
 * jwt compares every pair; an account with thousands of exports would make that millions of comparisons
 * per push, so the subjects go into a token trie and each one walks only the branches that can contain it:
 * its own token or `*` at each level, plus a trailing `>`.
 */

interface TrieNode {
  children: Map<string, TrieNode>
  /** The subject ending at this node and how many times it occurs in the list. */
  subject?: string
  count: number
}

const node = (): TrieNode => ({ children: new Map(), count: 0 })

/** Pairs (inner, outer) with inner contained in a different entry outer; at most `max` of them. */
export function containedPairs(subjects: string[], max = 20): Array<[string, string]> {
  const root = node()
  for (const s of subjects) {
    let n = root
    for (const tk of s.split('.')) {
      let next = n.children.get(tk)
      if (next === undefined) n.children.set(tk, (next = node()))
      n = next
    }
    n.subject = s
    n.count++
  }
  const out: Array<[string, string]> = []
  const reported = new Set<string>()
  for (const s of subjects) {
    if (out.length >= max) break
    if (reported.has(s)) continue
    const outer = findContainer(root, s.split('.'), s)
    if (outer !== undefined) {
      reported.add(s)
      out.push([s, outer])
    }
  }
  return out
}

/** A subject other than `self` (or `self` listed twice) that contains `tokens`. */
function findContainer(root: TrieNode, tokens: string[], self: string): string | undefined {
  const other = (n: TrieNode | undefined) =>
    n !== undefined && n.subject !== undefined && (n.subject !== self || n.count > 1) ? n.subject : undefined
  const stack: Array<[TrieNode, number]> = [[root, 0]]
  while (stack.length > 0) {
    const [n, k] = stack.pop()!
    if (k === tokens.length) {
      const hit = other(n)
      if (hit !== undefined) return hit
      continue
    }
    // A trailing `>` contains anything with at least one more token.
    const gt = other(n.children.get('>'))
    if (gt !== undefined) return gt
    const tk = tokens[k]!
    const same = n.children.get(tk)
    if (same !== undefined) stack.push([same, k + 1])
    const star = tk === '*' ? undefined : n.children.get('*')
    if (star !== undefined) stack.push([star, k + 1])
  }
  return undefined
}
