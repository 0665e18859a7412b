/**
 * What a package fetch holds of the DAG under its root and what it lacks: a walk from the
 * root through the blocks in the store; every link to a block the store lacks joins the
 * frontier ({@link PackageFrontier.needed}), and a block that arrives is walked in turn.
 *
 * @example
 * ```ts
 * const frontier = new PackageFrontier(store, () => { progressed = true })
 * await frontier.walk(root)
 * console.log(`${frontier.have} bytes held, ${frontier.needed.size} blocks lacking`)
 * ```
 */
import type { CID } from 'multiformats/cid'
import { blockLinks } from '../package/index.js'
import type { BlockStore } from '../store/index.js'

/** The held and lacking blocks of one package DAG. */
export class PackageFrontier {
  /** Blocks lacking, by CID string, in the order found. */
  readonly needed = new Map<string, CID>()
  private readonly walked = new Set<string>()
  private readonly walking = new Set<string>()
  private walks = 0
  private bytes = 0

  /** `onHeld` is called for each block found held (in the store, or just arrived). */
  constructor (private readonly store: BlockStore, private readonly onHeld: () => void) {}

  /** Total bytes of the held blocks walked. */
  get have (): number {
    return this.bytes
  }

  /** How many blocks are held. */
  get blocks (): number {
    return this.walked.size
  }

  /** Every block is held: nothing lacking, and no walk under way that might still find more. */
  get done (): boolean {
    return this.needed.size === 0 && this.walks === 0
  }

  /** Whether the block is held (and walked). */
  holds (key: string): boolean {
    return this.walked.has(key)
  }

  /** Walk from `cid` (its bytes, when just arrived): what is held is counted, what is lacking joins the frontier. */
  async walk (cid: CID, bytes?: Uint8Array): Promise<void> {
    this.walks++
    try {
      await this.walkFrom(cid, bytes)
    } finally {
      this.walks--
    }
  }

  /** Blocks may arrive another way (a publish, another release sharing them): walk lacking ones now in the store, except those `skip` names. */
  async absorb (skip: (key: string) => boolean): Promise<void> {
    for (const [key, cid] of [...this.needed]) {
      if (!skip(key) && await this.store.has(cid)) {
        this.needed.delete(key)
        await this.walk(cid)
      }
    }
  }

  private async walkFrom (cid: CID, bytes?: Uint8Array): Promise<void> {
    const stack: Array<{ cid: CID, bytes?: Uint8Array }> = [{ cid, bytes }]
    while (stack.length > 0) {
      const next = stack.pop() as { cid: CID, bytes?: Uint8Array }
      const key = next.cid.toString()
      // claimed before any await: two walks never count one block twice
      if (this.walked.has(key) || this.walking.has(key)) continue
      this.walking.add(key)
      try {
        let data = next.bytes
        if (data == null) {
          if (!(await this.store.has(next.cid))) {
            this.needed.set(key, next.cid)
            continue
          }
          try {
            data = await this.store.get(next.cid)
          } catch {
            this.needed.set(key, next.cid)
            continue
          }
        }
        this.walked.add(key)
        this.needed.delete(key)
        this.bytes += data.byteLength
        this.onHeld()
        for (const link of blockLinks(next.cid, data)) stack.push({ cid: link })
      } finally {
        this.walking.delete(key)
      }
    }
  }
}
