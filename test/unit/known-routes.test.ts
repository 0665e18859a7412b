import { describe, expect, it } from 'vitest'
import { KnownRoutes } from '../../src/shim/known-routes.js'

describe('KnownRoutes', () => {
  const list = ['/upgossip/app/kv/1', '/upgossip/app/kv/2', '/ipfs/id/1.0.0']

  it('chooses as the version choice does, and gives the same route for the same inputs', () => {
    const routes = new KnownRoutes()
    const mine = { native: 1, spoken: [1, 2] }
    const first = routes.route('peer', 'kv', mine, list, 2)
    expect(first).toEqual({ self: false, version: 2 })
    expect(routes.route('peer', 'kv', mine, list, 2)).toBe(first)
    // the callee's native version unknown: only this side's hops count
    expect(routes.route('peer', 'kv', mine, list, undefined)).toEqual({ self: false, version: 1 })
  })

  it('chooses again when the peer\'s list or this app\'s versions are new arrays', () => {
    const routes = new KnownRoutes()
    const spoken = [1, 2]
    expect(routes.route('peer', 'kv', { native: 1, spoken }, list, 1)).toEqual({ self: false, version: 1 })
    // the peer switched to 2 and now speaks only 2
    expect(routes.route('peer', 'kv', { native: 1, spoken }, ['/upgossip/app/kv/2'], 2)).toEqual({ self: false, version: 2 })
    // this app lost its future SO: no common version, the caller must ask
    expect(routes.route('peer', 'kv', { native: 1, spoken: [1] }, ['/upgossip/app/kv/2'], 2)).toBeUndefined()
  })
})
