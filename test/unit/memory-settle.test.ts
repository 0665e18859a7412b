import vm from 'node:vm'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemorySettle, fullCollection } from '../../src/daemon/index.js'

describe('memory settle (one full collection once the daemon is quiet after a burst)', () => {
  afterEach(() => { vi.useRealTimers() })

  it('collects once, quietMs after the last of several bursts', () => {
    vi.useFakeTimers()
    const collect = vi.fn()
    const settle = new MemorySettle({ busy: () => false, collect }, { quietMs: 3000 })
    settle.start()
    settle.burstEnded()
    vi.advanceTimersByTime(2000)
    settle.burstEnded() // a second burst moves the collection on
    vi.advanceTimersByTime(2999)
    expect(collect).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(collect).toHaveBeenCalledTimes(1)
    vi.advanceTimersByTime(60_000)
    expect(collect).toHaveBeenCalledTimes(1)
    expect(settle.collections).toBe(1)
  })

  it('waits while work is under way, and collects once it has ended', () => {
    vi.useFakeTimers()
    const collect = vi.fn()
    let busy = true
    const settle = new MemorySettle({ busy: () => busy, collect }, { quietMs: 1000 })
    settle.start()
    settle.burstEnded()
    vi.advanceTimersByTime(5000)
    expect(collect).not.toHaveBeenCalled()
    busy = false
    vi.advanceTimersByTime(1000)
    expect(collect).toHaveBeenCalledTimes(1)
  })

  it('does nothing before start or after stop', () => {
    vi.useFakeTimers()
    const collect = vi.fn()
    const settle = new MemorySettle({ busy: () => false, collect }, { quietMs: 1000 })
    settle.burstEnded()
    vi.advanceTimersByTime(5000)
    settle.start()
    settle.burstEnded()
    settle.stop()
    vi.advanceTimersByTime(5000)
    expect(collect).not.toHaveBeenCalled()
  })

  it('the real collection runs and leaves gc exposed nowhere: not here, not in contexts made later', () => {
    expect(() => { fullCollection() }).not.toThrow()
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined()
    expect(vm.runInNewContext('typeof gc')).toBe('undefined')
  })
})
