/**
 * Simulation objects for apps whose wire is TCP (docs/shim.md, "Stream simulation
 * objects"): they translate byte streams, not messages. Once per connection an SO's
 * `serve` (a peer of its version connected to this node) or `call` (this node connected
 * to a peer spoken to in its version) returns two it-pipe transforms, `(source) =>
 * source` over `Uint8Array` chunks:
 *
 * - `in`: the bytes travelling towards this node's app, from the SO's version to the
 *   next version towards the node's own;
 * - `out`: the bytes travelling away from it, the other way round.
 *
 * Chains compose as message chains do: a v1 connection to a v3 node runs v1's `in` then
 * v2's `in` on the way in, v2's `out` then v1's `out` on the way out.
 *
 * This module has no imports, and no TypeScript that Node cannot strip: the daemon runs
 * it in a worker thread of its own (`host/stream-so-worker.ts`), where an SO that loops
 * cannot stall the daemon.
 *
 * @example
 * ```ts
 * const chain = new StreamSimulationChain(2)
 * chain.add(asStreamSimulationObject((await import('./past.js')).default, 'past.js'))
 * const { in: toApp, out: toPeer } = chain.serve(1, { peer })
 * ```
 */

/** Bytes, in chunks of any size. */
export type ByteSource = AsyncIterable<Uint8Array>

/** An it-pipe transform of bytes. */
export type ByteTransform = (source: ByteSource) => AsyncIterable<Uint8Array>

/** The two directions of one connection: `in` towards this node's app, `out` away from it. */
export interface StreamDirections {
  in: ByteTransform
  out: ByteTransform
}

/** What an SO learns about the connection it translates. */
export interface StreamConnection {
  /** The other peer's id. */
  peer: string
}

/** A stream simulation object as a package exports it. */
export interface StreamSimulationObject {
  /** The protocol version this SO lets its node speak. */
  version: number
  /** A peer connected in `version` to this node: the directions of that connection. */
  serve: (connection: StreamConnection) => StreamDirections
  /** This node connected to a peer spoken to in `version`: the directions of that connection. */
  call: (connection: StreamConnection) => StreamDirections
}

/** A failure of a stream simulation object (its shape, a version it cannot speak, what it yielded). */
export class StreamSimulationError extends Error {
  /** The error's name, for callers to branch on. */
  readonly code: string

  constructor (message: string, code = 'SimulationError') {
    super(message)
    this.name = code
    this.code = code
  }
}

const identity: ByteTransform = source => source

/** Check that a module's default export has the shape of a stream simulation object. */
export function asStreamSimulationObject (value: unknown, where: string): StreamSimulationObject {
  const so = value as Partial<StreamSimulationObject> | undefined
  if (so == null || typeof so !== 'object' || !Number.isInteger(so.version) || (so.version as number) < 1 || typeof so.serve !== 'function' || typeof so.call !== 'function') {
    throw new StreamSimulationError(`${where}: the default export must be { version, serve(connection) → { in, out }, call(connection) → { in, out } }`, 'SimulationShapeError')
  }
  return so as StreamSimulationObject
}

/** What one SO's `serve` or `call` returned, checked. */
function directionsOf (value: unknown, where: string): StreamDirections {
  const d = value as Partial<StreamDirections> | undefined
  if (d == null || typeof d !== 'object' || typeof d.in !== 'function' || typeof d.out !== 'function') {
    throw new StreamSimulationError(`${where} must return { in, out }: two transforms (source) => source`, 'SimulationShapeError')
  }
  return d as StreamDirections
}

/** The output of `transform` on `source`, every chunk checked to be bytes. */
async function * checked (transform: ByteTransform, source: ByteSource, where: string): AsyncGenerator<Uint8Array> {
  const out = transform(source) as unknown
  if (out == null || (typeof (out as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function' && typeof (out as Iterable<unknown>)[Symbol.iterator] !== 'function')) {
    throw new StreamSimulationError(`${where} returned something that is not an (async) iterable of bytes`, 'SimulationShapeError')
  }
  for await (const chunk of out as AsyncIterable<unknown>) {
    if (!(chunk instanceof Uint8Array)) throw new StreamSimulationError(`${where} yielded ${typeof chunk === 'string' ? 'a string' : typeof chunk}, not a Uint8Array`, 'SimulationShapeError')
    if (chunk.byteLength > 0) yield chunk
  }
}

/** Transforms applied one after the other, each output checked. */
function compose (steps: Array<{ transform: ByteTransform, where: string }>): ByteTransform {
  if (steps.length === 0) return identity
  return source => steps.reduce<ByteSource>((s, step) => checked(step.transform, s, step.where), source)
}

/**
 * The stream SOs a node has loaded, keyed by the version each lets it speak; past SOs
 * below the native version, future SOs above, usable where they form a contiguous chain.
 */
export class StreamSimulationChain {
  /** The node's own protocol version. */
  readonly native: number
  private readonly byVersion = new Map<number, StreamSimulationObject>()

  // no parameter properties here (nor in anything the worker loads): Node strips types, it does not transform them
  constructor (native: number) {
    this.native = native
  }

  /** Add (or replace) the SO for its version. */
  add (so: StreamSimulationObject): void {
    if (so.version === this.native) throw new StreamSimulationError(`a simulation object for version ${so.version} duplicates the native version`)
    this.byVersion.set(so.version, so)
  }

  /** Every version this node can serve and call: the native one and each reachable through a contiguous chain. */
  spoken (): number[] {
    const out = [this.native]
    for (let v = this.native - 1; this.byVersion.has(v); v--) out.unshift(v)
    for (let v = this.native + 1; this.byVersion.has(v); v++) out.push(v)
    return out
  }

  /** The SOs from `version` (first) to the one next to the native version (last). */
  private path (version: number): StreamSimulationObject[] {
    if (!this.spoken().includes(version)) throw new StreamSimulationError(`this node cannot speak protocol version ${version} (it speaks ${this.spoken().join(', ')})`, 'UnsupportedVersionError')
    const out: StreamSimulationObject[] = []
    const step = version < this.native ? 1 : -1
    for (let v = version; v !== this.native; v += step) out.push(this.byVersion.get(v) as StreamSimulationObject)
    return out
  }

  /** A peer connected in `version`: `in` turns its bytes into the native version's, `out` the app's bytes into `version`'s. */
  serve (version: number, connection: StreamConnection): StreamDirections {
    const sos = this.path(version)
    const each = sos.map(so => ({ so, d: directionsOf(so.serve(connection), `the serve() of simulation object ${so.version}`) }))
    return {
      in: compose(each.map(({ so, d }) => ({ transform: d.in, where: `simulation object ${so.version} (serve, in)` }))),
      out: compose(each.reverse().map(({ so, d }) => ({ transform: d.out, where: `simulation object ${so.version} (serve, out)` })))
    }
  }

  /** This node connected to a peer in `target`: `out` turns the app's bytes into `target`'s, `in` the peer's bytes into the native version's. */
  call (target: number, connection: StreamConnection): StreamDirections {
    // the SO for each version between the native one (left out) and the target
    const sos = this.path(target).reverse()
    const each = sos.map(so => ({ so, d: directionsOf(so.call(connection), `the call() of simulation object ${so.version}`) }))
    return {
      out: compose(each.map(({ so, d }) => ({ transform: d.out, where: `simulation object ${so.version} (call, out)` }))),
      in: compose(each.reverse().map(({ so, d }) => ({ transform: d.in, where: `simulation object ${so.version} (call, in)` })))
    }
  }
}
