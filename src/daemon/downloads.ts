/**
 * The package downloads in progress on this peer: one abort controller per release
 * being fetched, the bytes held of each, and why a paused one waits. Staging runs them;
 * trust updates abort them; status and beats read them.
 */

/** Downloads in progress, by release id. */
export class Downloads {
  private readonly running = new Map<string, AbortController>()
  private readonly held = new Map<string, number>()
  private readonly paused = new Map<string, string>()

  /** Whether a download of `id` runs now. */
  has (id: string): boolean {
    return this.running.has(id)
  }

  /** How many run now. */
  get size (): number {
    return this.running.size
  }

  /** Begin tracking a download of `id`; its signal aborts when {@link abort} is called. */
  begin (id: string): AbortSignal {
    const controller = new AbortController()
    this.running.set(id, controller)
    return controller.signal
  }

  /** The download of `id` ended (done, failed or aborted). */
  end (id: string): void {
    this.running.delete(id)
  }

  /** Abort the download of `id`, if one runs. */
  abort (id: string): void {
    this.running.get(id)?.abort()
  }

  /** Abort every download. */
  abortAll (): void {
    for (const controller of this.running.values()) controller.abort()
  }

  /** Abort and forget everything about `id` (a release dropped). */
  forget (id: string): void {
    this.abort(id)
    this.held.delete(id)
  }

  /** Bytes of `id` held here so far (0 when unknown). */
  have (id: string): number {
    return this.held.get(id) ?? 0
  }

  /** Record the bytes of `id` held. */
  setHave (id: string, bytes: number): void {
    this.held.set(id, bytes)
  }

  /** Why the download of `id` is paused (a full disk), until it completes. */
  pausedReason (id: string): string | undefined {
    return this.paused.get(id)
  }

  /** Say why the download of `id` is paused; `undefined` clears it. */
  setPaused (id: string, reason: string | undefined): void {
    if (reason == null) this.paused.delete(id)
    else this.paused.set(id, reason)
  }
}
