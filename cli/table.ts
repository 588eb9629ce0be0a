/** A cell: numbers are right-aligned, undefined prints as `-`. */
export type Cell = string | number | undefined

const text = (c: Cell) => (c === undefined || c === '' ? '-' : String(c).replace(/\s*\n\s*/g, ' '))

/** Plain aligned columns under a header and a rule, for a terminal or a pager; no colours, no box drawing. */
export function renderTable(headers: string[], rows: Cell[][]): string {
  const cells = rows.map((r) => headers.map((_, i) => text(r[i])))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)))
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === undefined))
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n'
}

/** A titled block: the title line, then the table (or a note when there are no rows). */
export function section(title: string, headers: string[], rows: Cell[][], empty = '(none)'): string {
  return `${title}\n${rows.length === 0 ? `${empty}\n` : renderTable(headers, rows)}`
}

/** Seconds since the epoch as `2025-05-01 10:00:00Z`; 0 or missing as undefined (printed `-`). */
export function formatSeconds(s: number | undefined): string | undefined {
  if (s === undefined || s === 0) return undefined
  return new Date(s * 1000).toISOString().replace('T', ' ').replace('.000Z', 'Z')
}
