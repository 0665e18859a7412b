/**
 * Simulation-object chains, run inside the app's process. A request of version V
 * reaching a node of version P is served through the SOs between them (past SOs below
 * P, future SOs above); an outgoing request of version P to a peer spoken to in version
 * T goes out through the SOs between P and T. Every SO call has a time limit.
 */

/** A simulation object as a package exports it (docs/shim.md). */
export interface SimulationObject {
  /** The version this SO lets the node speak. */
  version: number
  /** A request of `version` arrived; `local` asks the next version towards the node's own. */
  serve: (request: unknown, local: (request: unknown) => Promise<unknown>) => unknown
  /** The node calls a peer spoken to in `version`; `remote` sends towards it. */
  call: (request: unknown, remote: (request: unknown) => Promise<unknown>) => unknown
}

/** A failure inside a simulation object (thrown, timed out, or malformed). */
export class SimulationError extends Error {
  constructor (message: string, readonly code = 'SimulationError') {
    super(message)
    this.name = code
  }
}

/**
 * The SOs a node has loaded, keyed by the version each lets it speak. Past SOs have
 * versions below the native one, future SOs above; together they must form a
 * contiguous chain to be used.
 */
export class SimulationChain {
  private readonly byVersion = new Map<number, SimulationObject>()

  constructor (readonly native: number, readonly timeoutMs = 10_000) {}

  /** Add (or replace) the SO for its version. */
  add (so: SimulationObject): void {
    if (so.version === this.native) throw new SimulationError(`a simulation object for version ${so.version} duplicates the native version`)
    this.byVersion.set(so.version, so)
    this.spokenList = undefined
  }

  /** {@link spoken}, worked out once per set of SOs (every SO call checks it). */
  private spokenList: number[] | undefined
  private spokenNow (): number[] {
    this.spokenList ??= this.spoken()
    return this.spokenList
  }

  /** Every version this node can serve and call: the native one and each reachable through a contiguous chain. */
  spoken (): number[] {
    const out = [this.native]
    for (let v = this.native - 1; this.byVersion.has(v); v--) out.unshift(v)
    for (let v = this.native + 1; this.byVersion.has(v); v++) out.push(v)
    return out
  }

  /** `fn`'s result, or a {@link SimulationError} once it ran past the limit: one promise and one timer (a `Promise.race` made four promises per SO call). */
  private async timed<T> (what: string, fn: () => unknown): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      // a throw of fn's synchronous part rejects this promise (no timer set yet: nothing could stop it anyway)
      const result = fn()
      const timer = setTimeout(() => { reject(new SimulationError(`${what} ran past its ${this.timeoutMs} ms limit`, 'SimulationTimeoutError')) }, this.timeoutMs)
      Promise.resolve(result).then(
        value => { clearTimeout(timer); resolve(value as T) },
        (err: Error) => { clearTimeout(timer); reject(err) }
      )
    })
  }

  private so (version: number): SimulationObject {
    const so = this.byVersion.get(version)
    if (so == null || !this.spokenNow().includes(version)) throw new SimulationError(`this node cannot speak protocol version ${version} (it speaks ${this.spoken().join(', ')})`, 'UnsupportedVersionError')
    return so
  }

  /** Serve a request of `version` with `handler`, the node's own (native) handler. */
  async serve (version: number, request: unknown, handler: (request: unknown) => Promise<unknown>): Promise<unknown> {
    if (version === this.native) return await handler(request)
    const so = this.so(version)
    // one step towards the native version
    const inner = version < this.native ? version + 1 : version - 1
    return await this.timed(`simulation object ${version} (serve)`, () => so.serve(request, async r => await this.serve(inner, r, handler)))
  }

  /** Send a native request to a peer spoken to in `target`; `send` delivers a request of `target`. */
  async call (target: number, request: unknown, send: (request: unknown) => Promise<unknown>, from = this.native): Promise<unknown> {
    if (from === target) return await send(request)
    const next = target < from ? from - 1 : from + 1
    // the SO for `next` speaks `next` on behalf of a node that speaks `from`
    const so = this.so(next)
    return await this.timed(`simulation object ${next} (call)`, () => so.call(request, async r => await this.call(target, r, send, next)))
  }
}

/** Check that a module's default export has the shape of a simulation object. */
export function asSimulationObject (value: unknown, where: string): SimulationObject {
  const so = value as Partial<SimulationObject> | undefined
  if (so == null || typeof so !== 'object' || !Number.isInteger(so.version) || typeof so.serve !== 'function' || typeof so.call !== 'function') {
    throw new SimulationError(`${where}: the default export must be { version, serve(request, local), call(request, remote) }`, 'SimulationShapeError')
  }
  return so as SimulationObject
}
