/** Option parsers shared by commands. */

/** Commander reducer for a repeatable option: `--key a --key b` → `['a', 'b']`. */
export function collect (value: string, previous: string[]): string[] {
  return [...previous, value]
}
