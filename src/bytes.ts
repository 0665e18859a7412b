/**
 * Byte pieces joined into one array: the frames a call stream batches into one write
 * (net/call-mux.ts) and the chunks of an HTTP body (host/http-message.ts).
 *
 * @example
 * ```ts
 * joinBytes([Uint8Array.of(1, 2), Uint8Array.of(3)], 3) // Uint8Array [1, 2, 3]
 * ```
 */

/**
 * The pieces, in order, as one plain `Uint8Array` of its own: a copy even of a single
 * piece, so the result is never a view into a socket's (larger, reused) buffer. `total`
 * is the sum of the pieces' lengths, which every caller has counted already.
 */
export function joinBytes (pieces: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let at = 0
  for (const piece of pieces) {
    out.set(piece, at)
    at += piece.byteLength
  }
  return out
}
