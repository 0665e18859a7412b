/**
 * The operator's controls on this peer — approvals and holds per release — kept
 * durably in `controls.json`, so they survive restarts.
 */
import fs from 'node:fs/promises'
import { writeJsonAtomic } from '../store/index.js'

/** Approvals and holds. */
export class OperatorControls {
  private approved = new Set<string>()
  private held = new Set<string>()

  constructor (private readonly file: string) {}

  /** Load from disk (empty when absent or unreadable). */
  async load (): Promise<void> {
    try {
      const json = JSON.parse(await fs.readFile(this.file, 'utf8')) as { approved?: unknown, held?: unknown }
      if (Array.isArray(json.approved)) this.approved = new Set(json.approved.filter((x): x is string => typeof x === 'string'))
      if (Array.isArray(json.held)) this.held = new Set(json.held.filter((x): x is string => typeof x === 'string'))
    } catch {}
  }

  private async save (): Promise<void> {
    await writeJsonAtomic(this.file, { approved: [...this.approved], held: [...this.held] })
  }

  isApproved (id: string): boolean { return this.approved.has(id) }
  isHeld (id: string): boolean { return this.held.has(id) }

  async approve (id: string): Promise<void> { this.approved.add(id); await this.save() }
  async hold (id: string): Promise<void> { this.held.add(id); await this.save() }
  async resume (id: string): Promise<void> { this.held.delete(id); await this.save() }
}
