/**
 * A complete {@link DaemonApi} for tests of the control API: every method refuses unless
 * the test gives its own, and the events are a real emitter.
 */
import { EventEmitter } from 'node:events'
import type { DaemonApi, DaemonEvents } from '../../src/daemon/index.js'

const refuse = async (): Promise<never> => { throw new Error('not part of this test') }

/** A daemon API whose methods are `overrides`, the rest refusing. */
export function stubDaemonApi (overrides: Partial<DaemonApi> = {}): DaemonApi & { emitter: EventEmitter<DaemonEvents> } {
  const emitter = new EventEmitter<DaemonEvents>()
  return {
    peerId: '12D3KooWstub',
    status: () => { throw new Error('not part of this test') },
    timeline: () => ({ samples: [] }),
    metricsText: async () => '',
    publish: refuse,
    revoke: refuse,
    pause: refuse,
    rotate: refuse,
    call: refuse,
    approve: refuse,
    hold: refuse,
    resume: refuse,
    rollback: refuse,
    history: async () => [],
    backupBegin: refuse,
    backupRenew: () => { throw new Error('not part of this test') },
    backupEnd: () => { throw new Error('not part of this test') },
    refused: () => {},
    failed: () => {},
    on: (event, listener) => emitter.on(event, listener as never),
    off: (event, listener) => emitter.off(event, listener as never),
    ...overrides,
    emitter
  }
}
