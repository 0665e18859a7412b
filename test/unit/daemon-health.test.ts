import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { daemonHealth } from '../../src/daemon/health.js'
import type { HealthComponents } from '../../src/daemon/health.js'
import type { PeerState } from '../../src/daemon/api.js'

const PEER = '12D3KooWHealth'
const V1 = { id: 'bafyv1', version: '1.0.0' }

/** A running app as the host holds it: running, ready, and unhealthy or not. */
function app (fields: { running?: boolean, ready?: boolean, unhealthyReason?: string } = {}): never {
  return Object.assign(new EventEmitter(), { running: true, ready: true, unhealthyReason: undefined, ...fields }) as never
}

function health (over: Partial<HealthComponents> & { current?: typeof V1 | null, app?: string | null, state?: PeerState } = {}): ReturnType<typeof daemonHealth> {
  const { current = V1, app: appName = 'kv', state = 'running', ...rest } = over
  return daemonHealth({
    phase: 'running',
    peerId: PEER,
    nodeState: { state: { app: appName, current, previous: null, since: null } },
    host: { current: app(), failedReason: undefined },
    peerState: () => state,
    ...rest
  })
}

describe('health (GET /healthz of the --metrics listener)', () => {
  it('is ok while the daemon runs and its app runs, is ready and healthy', () => {
    expect(health()).toEqual({ status: 'ok', peerId: PEER, app: 'kv', version: '1.0.0', state: 'running' })
    expect(health({ build: '0.1.0 (1a2b3c4)' }).build).toBe('0.1.0 (1a2b3c4)')
  })

  it('is unavailable, with the reason, while the daemon starts or stops', () => {
    expect(health({ phase: 'starting', host: undefined, peerState: undefined })).toMatchObject({ status: 'unavailable', state: 'starting', reason: 'the daemon is starting' })
    expect(health({ phase: 'stopping' })).toMatchObject({ status: 'unavailable', state: 'stopping', reason: 'the daemon is stopping' })
  })

  it('is unavailable when no app is installed yet', () => {
    expect(health({ current: null, state: 'installing' })).toMatchObject({ status: 'unavailable', state: 'installing', version: null, reason: 'no version of kv installed yet (waiting for a release from the network)' })
    expect(health({ current: null, app: null, state: 'installing' })).toMatchObject({ status: 'unavailable', reason: 'no app installed yet' })
  })

  it('is unavailable when the app exited, is not ready, or is unhealthy; and when no version can run', () => {
    expect(health({ host: { current: app({ running: false }), failedReason: undefined } })).toMatchObject({ status: 'unavailable', reason: 'kv@1.0.0 is not running (it exited; the daemon restarts it)' })
    expect(health({ host: { current: undefined, failedReason: undefined } })).toMatchObject({ status: 'unavailable', reason: 'kv@1.0.0 is not running (it exited; the daemon restarts it)' })
    expect(health({ host: { current: app({ ready: false }), failedReason: undefined } })).toMatchObject({ status: 'unavailable', reason: 'kv@1.0.0 is not ready yet' })
    expect(health({ host: { current: app({ unhealthyReason: 'did not answer GET /healthz 3 times in a row' }), failedReason: undefined } })).toMatchObject({ status: 'unavailable', reason: 'kv@1.0.0 is unhealthy: did not answer GET /healthz 3 times in a row' })
    expect(health({ state: 'failed', host: { current: app({ running: false }), failedReason: 'kv@1.0.0 crashed 5 times within 60s' } })).toMatchObject({ status: 'unavailable', state: 'failed', reason: 'no version can run: kv@1.0.0 crashed 5 times within 60s' })
  })

  it('is ok during a switch: requests are held for the next version, not refused', () => {
    expect(health({ state: 'upgrading', host: { current: app({ running: false }), failedReason: undefined } })).toMatchObject({ status: 'ok', state: 'upgrading' })
    expect(health({ state: 'rolling-back', host: { current: undefined, failedReason: undefined } })).toMatchObject({ status: 'ok', state: 'rolling-back' })
  })
})
