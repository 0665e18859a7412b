/**
 * Switching paused for a backup: the lease waits for a switch in progress, holds every
 * decision of the rollout while it lasts, and lets go when ended or when it expires.
 */
import { describe, expect, it } from 'vitest'
import { BackupInProgressError, BackupLeaseError, BackupPause } from '../../src/daemon/backup-pause.js'

/** The rollout's `exclusive`, as the real one chains it. */
function rolloutChain (): { exclusive: <T>(fn: () => Promise<T>) => Promise<T> } {
  let lock: Promise<unknown> = Promise.resolve()
  return {
    exclusive: async <T>(fn: () => Promise<T>): Promise<T> => {
      const run = lock.then(fn)
      lock = run.catch(() => {})
      return await run
    }
  }
}

function events (): { lines: string[], info: (type: string, message: string) => void, warn: (type: string, message: string) => void } {
  const lines: string[] = []
  return { lines, info: (type, message) => { lines.push(`${type}: ${message}`) }, warn: (type, message) => { lines.push(`WARN ${type}: ${message}`) } }
}

const tick = async (ms = 20): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('backup pause', () => {
  it('waits for a switch in progress, holds what comes after until ended, and refuses a second backup meanwhile', async () => {
    const rollout = rolloutChain()
    const log = events()
    const pause = new BackupPause({ rollout, events: log, clock: { now: () => Date.now() } })
    const order: string[] = []
    let finishSwitch = (): void => {}
    const switching = rollout.exclusive(async () => { order.push('switch started'); await new Promise<void>(resolve => { finishSwitch = resolve }); order.push('switch ended') })
    const begun = pause.begin().then(lease => { order.push('backup began'); return lease })
    await tick()
    expect(order).toEqual(['switch started'])
    expect(pause.holding).toBe(true)
    await expect(pause.begin()).rejects.toThrow(BackupInProgressError)
    finishSwitch()
    await switching
    const lease = await begun
    // a decision that comes while the backup holds switching waits for its end
    const next = rollout.exclusive(async () => { order.push('next decision') })
    await tick()
    expect(order).toEqual(['switch started', 'switch ended', 'backup began'])
    expect(() => pause.end('not-the-lease')).toThrow(BackupLeaseError)
    expect(pause.renew(lease.lease).lease).toBe(lease.lease)
    expect(pause.end(lease.lease).ended).toBe(true)
    await next
    expect(order.at(-1)).toBe('next decision')
    expect(pause.holding).toBe(false)
    expect(() => pause.end(lease.lease)).toThrow(/no backup holds switching/)
    expect(log.lines.map(l => l.split(':')[0])).toEqual(['backup-began', 'backup-ended'])
  })

  it('a lease not renewed expires by itself: switching goes on, and the late backup is told', async () => {
    const rollout = rolloutChain()
    const log = events()
    const pause = new BackupPause({ rollout, events: log, clock: { now: () => Date.now() } }, { leaseMs: 50 })
    const { lease } = await pause.begin()
    let decided = false
    const next = rollout.exclusive(async () => { decided = true })
    await tick(150)
    await next
    expect(decided).toBe(true)
    expect(log.lines.at(-1)).toMatch(/^WARN backup-expired: a backup held switching/)
    expect(() => pause.renew(lease)).toThrow(BackupLeaseError)
  })
})
