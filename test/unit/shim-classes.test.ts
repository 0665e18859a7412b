/**
 * The shim's route to a peer of another class (`node.call(peer, req, { app })`): the
 * protocol the running release's `calls` names, checked against what the callee speaks;
 * and the named error for each way it cannot be: the callee runs another app, the release
 * names no protocol for that app, or the callee speaks that app but not that protocol.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import type { AppStreams } from '../../src/net/index.js'
import { Shim, UndeclaredCallError, UnsupportedCallError, WrongAppError } from '../../src/shim/index.js'

const peerId = async (): Promise<string> => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

/** A shim of a `client` 1 peer whose release calls store in protocol 2; peers' apps and protocols as given. */
function shim (self: string, apps: Record<string, string>, protocols: Record<string, string[]>, calls: Record<string, number> = { store: 2 }): Shim {
  const streams = {
    knownProtocolsOf: () => undefined,
    protocolsOf: async (peer: { toString: () => string }) => protocols[peer.toString()] ?? [],
    refreshProtocols: async (peer: { toString: () => string }) => protocols[peer.toString()] ?? []
  } as unknown as AppStreams
  return new Shim({
    streams,
    selfId: () => self,
    app: () => 'client',
    native: () => 1,
    spoken: () => [1],
    nativeOf: () => undefined,
    appOf: peer => apps[peer],
    callsOf: app => calls[app],
    deliver: async () => null,
    log: () => {}
  })
}

describe('routes to another class', () => {
  it('speaks the protocol `calls` names, translated (if at all) by the callee', async () => {
    const [self, store] = [await peerId(), await peerId()]
    const s = shim(self, { [store]: 'store' }, { [store]: ['/upgossip/app/store/2', '/upgossip/app/store/3'] })
    expect(await s.route(store, 'store')).toEqual({ self: false, version: 2, app: 'store' })
    // its own app: the usual route, no `app`
    expect(await s.route(self, 'client')).toEqual({ self: true })
  })

  it('names what is wrong: another app, no `calls` entry, a protocol the callee does not speak', async () => {
    const [self, store, other] = [await peerId(), await peerId(), await peerId()]
    const s = shim(self, { [store]: 'store', [other]: 'client' }, { [store]: ['/upgossip/app/store/3'], [other]: ['/upgossip/app/client/1'] })
    await expect(s.route(other, 'store')).rejects.toThrow(WrongAppError)
    await expect(s.route(other, 'store')).rejects.toThrow(/runs client, not store/)
    await expect(s.route(self, 'store')).rejects.toThrow(/this peer runs client, not store/)
    await expect(s.route(store, 'store')).rejects.toThrow(UnsupportedCallError)
    await expect(s.route(store, 'store')).rejects.toThrow(/speaks store protocol 3; this version calls store in protocol 2/)
    const undeclared = shim(self, { [store]: 'store' }, { [store]: ['/upgossip/app/store/2'] }, {})
    await expect(undeclared.route(store, 'store')).rejects.toThrow(UndeclaredCallError)
    // a peer not in view yet that serves no store at all
    const unseen = await peerId()
    await expect(s.route(unseen, 'store')).rejects.toThrow(/does not serve store/)
  })
})
