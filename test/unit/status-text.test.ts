/** The text `upgossip status` prints: the local policy, and why each waiting release waits, in words. */
import { describe, expect, it } from 'vitest'
import { renderStatus } from '../../src/cli/commands/status.js'
import type { DaemonStatus } from '../../src/daemon/index.js'

const status = (extra: Partial<DaemonStatus>): DaemonStatus => ({
  peerId: '12D3KooWF3KC6JZKTopNPue7hKUXbd5RrrJHwUPKEeA5FnLiVhHX',
  app: 'kv',
  version: '1.0.0',
  state: 'running',
  labels: {},
  networkName: 'default',
  multiaddrs: [],
  connections: 0,
  freshness: {} as DaemonStatus['freshness'],
  releases: [],
  network: [],
  ...extra
} as DaemonStatus)

describe('status text', () => {
  it('shows the local policy rule by rule, and the reason of a waiting release under it', () => {
    const lines = renderStatus(status({
      policy: [{ rule: 'rolling', max: 1 }, { rule: 'window', daily: '02:00-04:00', tz: 'UTC' }],
      releases: [
        { id: 'bafyreialvaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3whce', app: 'kv', version: '1.0.0', state: 'active', have: 498, size: 498 },
        { id: 'bafyreictgaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa7uyyda', app: 'kv', version: '2.0.0', state: 'waiting', have: 569, size: 569, waitingOn: 'window', reason: 'outside the daily window 02:00-04:00 UTC' }
      ] as DaemonStatus['releases']
    }))
    expect(lines).toContain('policy    rolling max=1; window daily=02:00-04:00 tz=UTC')
    const at = lines.findIndex(l => l.includes('waiting on window'))
    expect(at).toBeGreaterThan(0)
    expect(lines[at + 1]).toBe(`${' '.repeat(19)}outside the daily window 02:00-04:00 UTC`)
    // no policy, no line
    expect(renderStatus(status({})).some(l => l.startsWith('policy'))).toBe(false)
  })
})
