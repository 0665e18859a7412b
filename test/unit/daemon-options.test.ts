import { describe, expect, it } from 'vitest'
import { DaemonConfigError, resolveDaemonOptions } from '../../src/daemon/options.js'

describe('daemon options: beat intervals', () => {
  it('an idle peer beats every 20 s by default, and a silent peer leaves the view after 60 s', () => {
    const o = resolveDaemonOptions({})
    expect(o.beatIntervalMs).toBe(5000)
    expect(o.idleBeatIntervalMs).toBe(20_000)
    expect(o.peerTimeoutMs).toBe(60_000)
    expect(o.idleBeatRate).toBe(0.5)
  })

  it('the idle interval is the smaller of 4 beats and a third of the peer timeout', () => {
    expect(resolveDaemonOptions({ beatInterval: '1s', peerTimeout: '20s' }).idleBeatIntervalMs).toBe(4000)
    expect(resolveDaemonOptions({ beatInterval: '1s', peerTimeout: '8s' }).idleBeatIntervalMs).toBe(2666)
  })

  it('an idle interval given is kept, but never below the beat interval', () => {
    expect(resolveDaemonOptions({ idleBeatInterval: '1m' }).idleBeatIntervalMs).toBe(60_000)
    expect(resolveDaemonOptions({ beatInterval: '10s', idleBeatInterval: '2s' }).idleBeatIntervalMs).toBe(10_000)
    expect(() => resolveDaemonOptions({ idleBeatInterval: 'soon' })).toThrow(/idleBeatInterval/)
    expect(resolveDaemonOptions({ idleBeatRate: 2 }).idleBeatRate).toBe(2)
    // a beat announces its idle interval and peers refuse one over 10 minutes
    expect(resolveDaemonOptions({ idleBeatInterval: '10m' }).idleBeatIntervalMs).toBe(600_000)
    expect(() => resolveDaemonOptions({ idleBeatInterval: '11m' })).toThrow(/idleBeatInterval 11m: at most 10m/)
    expect(() => resolveDaemonOptions({ beatInterval: '1h' })).toThrow(/beatInterval 1h: at most 10m/)
    for (const idleBeatRate of [0, -1, 1001, '1']) expect(() => resolveDaemonOptions({ idleBeatRate } as never), String(idleBeatRate)).toThrow(/idleBeatRate/)
  })
})

describe('daemon options: dialFrom', () => {
  it('takes an IPv4 or IPv6 address as the source of outgoing connections, and none by default', () => {
    expect(resolveDaemonOptions({}).dialFrom).toBeUndefined()
    expect(resolveDaemonOptions({ dialFrom: '127.0.0.12' }).dialFrom).toBe('127.0.0.12')
    expect(resolveDaemonOptions({ dialFrom: '::1' }).dialFrom).toBe('::1')
    // the command line wins over the config file
    expect(resolveDaemonOptions({ dialFrom: '127.0.0.3' }, { dialFrom: '127.0.0.2' }).dialFrom).toBe('127.0.0.3')
  })

  it('refuses what is not an address, naming the option', () => {
    for (const bad of ['localhost', '/ip4/127.0.0.2', '127.0.0.256', '127.0.0.2:4001', '']) {
      expect(() => resolveDaemonOptions({ dialFrom: bad })).toThrow(/--dial-from .*not an IPv4 or IPv6 address/)
    }
    expect(() => resolveDaemonOptions({}, { dialFrom: 'somewhere' })).toThrow(DaemonConfigError)
  })
})

describe('daemon options: metrics', () => {
  it('is off by default, and takes HOST:PORT from the command line or the config file (the command line wins)', () => {
    expect(resolveDaemonOptions({}).metrics).toBeUndefined()
    expect(resolveDaemonOptions({ metrics: '0.0.0.0:9464' }).metrics).toEqual({ host: '0.0.0.0', port: 9464 })
    expect(resolveDaemonOptions({ metrics: '127.0.0.1:0' }).metrics).toEqual({ host: '127.0.0.1', port: 0 })
    expect(resolveDaemonOptions({ metrics: '[::1]:9464' }).metrics).toEqual({ host: '::1', port: 9464 })
    expect(resolveDaemonOptions({ metrics: 'localhost:9464' }).metrics).toEqual({ host: 'localhost', port: 9464 })
    expect(resolveDaemonOptions({ metrics: '127.0.0.1:9001' }, { metrics: '127.0.0.1:9000' }).metrics).toEqual({ host: '127.0.0.1', port: 9001 })
    expect(resolveDaemonOptions({}, { metrics: '127.0.0.1:9000' }).metrics).toEqual({ host: '127.0.0.1', port: 9000 })
  })

  it('refuses what is not HOST:PORT, naming the option and showing the form', () => {
    for (const bad of ['9464', ':9464', '127.0.0.1', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:x', '::1:9464', '[::1]', 'host name:1', 'http://127.0.0.1:9464', '[not-v6]:1', '-bad-:1']) {
      let err: unknown
      try { resolveDaemonOptions({ metrics: bad }) } catch (e) { err = e }
      expect(err, bad).toBeInstanceOf(DaemonConfigError)
      expect((err as Error).message, bad).toBe(`--metrics ${bad}: not HOST:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464; port 0 picks a free one)`)
    }
  })
})

describe('daemon options: bootstrap', () => {
  it('takes addresses with /p2p/PEERID or without, from the command line or the config file', () => {
    const complete = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzh4t3YMGZUU3uhqTMy3i6HUfrXAqjKaA5AqLKUSdmEk'
    expect(resolveDaemonOptions({ bootstrap: ['/ip4/127.0.0.1/tcp/4001', complete] }).bootstrap).toEqual(['/ip4/127.0.0.1/tcp/4001', complete])
    expect(resolveDaemonOptions({}, { bootstrap: ['/dns4/peer.example.net/tcp/4001'] }).bootstrap).toEqual(['/dns4/peer.example.net/tcp/4001'])
  })

  it('refuses what is not the address of a peer, naming the option and both forms', () => {
    for (const bad of ['/ip4/127.0.0.1', 'not-a-multiaddr', '/ip4/127.0.0.1/udp/4001']) {
      expect(() => resolveDaemonOptions({ bootstrap: [bad] }), bad).toThrow(DaemonConfigError)
      expect(() => resolveDaemonOptions({ bootstrap: [bad] }), bad).toThrow(`--bootstrap ${bad}: not the address of a peer: a TCP multiaddr (e.g. /ip4/127.0.0.1/tcp/4001 or /dns4/peer.example.net/tcp/4001), with /p2p/PEERID or without (as in another peer's control.json "multiaddrs")`)
    }
  })
})
