/**
 * Peer ids and release ids as people read them in one line: the first 10 characters, `…`,
 * the last 6 (`12D3KooWGJ…FrywRj`); `status`, `rollout status` and schedule reasons use it,
 * and a unique prefix or this form finds the peer again (cli/peer-ids.ts).
 *
 * @example
 * ```ts
 * shortId('12D3KooWGJxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxFrywRj') // '12D3KooWGJ…FrywRj'
 * ```
 */
export function shortId (id: string): string {
  return id.length > 20 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id
}
