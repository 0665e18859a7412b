/**
 * The valid name a mistyped one was probably meant to be: one shared rule for every
 * "did you mean" (schedule rules, enum values, unknown keys of a manifest, policy or config).
 *
 * @example
 * ```ts
 * nearestName('rollling', ['immediate', 'rolling', 'canary']) // 'rolling'
 * nearestName('zzz', ['immediate', 'rolling'])                // undefined: nothing is close
 * ```
 */

/**
 * Edit distance counting an insertion, a deletion, a substitution or a swap of two
 * neighbouring characters as one edit (optimal string alignment): "treshold" and
 * "threshold" are 1 apart, and so are "rollnig" and "rolling".
 */
export function editDistance (a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)]
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min((rows[i - 1]?.[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (rows[i - 1]?.[j - 1] ?? 0) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (rows[i - 2]?.[j - 2] ?? 0) + 1)
      row.push(d)
    }
    rows.push(row)
  }
  return rows[a.length]?.[b.length] ?? 0
}

/**
 * The candidate closest to `value`, when it is close enough to be a typo of it: case
 * aside, at most a third of the candidate's length apart (at least 1, at most 3 edits).
 * "halt" is not suggested for "at", nor anything for a word that shares nothing with the list.
 */
export function nearestName (value: string, candidates: readonly string[]): string | undefined {
  const typed = value.toLowerCase()
  let best: { name: string, distance: number } | undefined
  for (const name of candidates) {
    const distance = editDistance(typed, name.toLowerCase())
    const allowed = Math.min(3, Math.max(1, Math.floor(name.length / 3)))
    if (distance > allowed || distance >= Math.max(typed.length, name.length)) continue
    if (best == null || distance < best.distance) best = { name, distance }
  }
  return best?.name
}

/** `; did you mean "rolling"?` when one of `candidates` is close to `value`, else an empty string. */
export function didYouMean (value: unknown, candidates: readonly string[]): string {
  if (typeof value !== 'string') return ''
  const near = nearestName(value, candidates)
  return near == null || near === value ? '' : `; did you mean "${near}"?`
}
