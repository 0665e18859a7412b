/**
 * One fixed case for each bug the fuzz properties found: each failed before its fix
 * with a crash, an unnamed error, a 5xx or unbounded work.
 */
import * as dagCbor from '@ipld/dag-cbor'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { DaemonUnreachableError, resolveEndpoint } from '../../../src/cli/control-client.js'
import { ControlApi, NodeStateDamagedError, readNodeState } from '../../../src/daemon/index.js'
import { stubDaemonApi } from '../daemon-api-stub.js'
import { AppProcess, MalformedIpcMessageError } from '../../../src/host/index.js'
import { tempDir } from '../../helpers.js'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { PrototypeKeyError, decodeDagCbor } from '../../../src/dag-cbor.js'
import { RemoteNamedError } from '../../../src/errors.js'
import { MalformedBeatError, decodeBeat } from '../../../src/net/index.js'
import { NotAPackageError, UnsafePathError, listPackageFiles, packDirectory, readPackageManifest, unpackPackage } from '../../../src/package/index.js'
import { materialise } from './package-dags.js'
import { KeyFileInvalidError, MalformedReleaseError, ReleaseBook, encodeSignedRelease, generatePublisherKey, loadTrustStore, releaseId, signReleaseId, TrustFileInvalidError, TrustPolicy, decodeKeyFile, decodeReleasesTopicMessage } from '../../../src/release/index.js'
import { runModuleRule } from '../../../src/schedule/index.js'
import type { ScheduleContext } from '../../../src/schedule/index.js'
import { MemoryBlockStore, UnsupportedCidError, lockDataDir, toCid } from '../../../src/store/index.js'

const beat = { v: 1, seq: 1, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [] }
// a `length` that cannot be compared with a number (valid JSON and dag-cbor alike)
const hostileLength = { length: { valueOf: 0, toString: 0 } }

describe('bugs found by fuzzing', () => {
  it('dag-cbor: a map key "__proto__" is refused, not turned into a prototype that throws TypeError when read', () => {
    // the decoder made { "__proto__": bytes } an object that passes `instanceof Uint8Array` and throws on `.byteLength`
    const fakeBytes = { ['__proto__']: new Uint8Array(4) }
    expect(() => decodeBeat(dagCbor.encode({ ...beat, claim: fakeBytes }))).toThrow(MalformedBeatError)
    expect(() => decodeReleasesTopicMessage(dagCbor.encode({ type: 'revocation', revocation: fakeBytes }))).toThrow(MalformedReleaseError)
    // with a value that is not an object the key silently vanished
    expect(() => decodeDagCbor(dagCbor.encode({ a: { ['__proto__']: 0 } }))).toThrow(PrototypeKeyError)
    // the string itself, as a value or inside bytes (a package block), is fine
    const fine = { a: '__proto__', b: Uint8Array.from(Buffer.from('pi__proto__')) }
    expect(decodeDagCbor(dagCbor.encode(fine))).toEqual(fine)
  })

  it('schemas: a wrong-typed value with a hostile "length" is refused by name, not a TypeError out of zod', () => {
    expect(() => decodeBeat(dagCbor.encode({ ...beat, upgrading: hostileLength }))).toThrow(MalformedBeatError)
    expect(() => TrustPolicy.parse({ apps: { kv: { publishers: hostileLength, threshold: 1 } } })).toThrow(TrustFileInvalidError)
  })

  it('schemas: a big integer inside a map where a string belongs is echoed in MalformedBeatError, not a TypeError while printing it', () => {
    // dag-cbor decodes a 2^60 to a bigint; JSON.stringify threw on it and String() on the map around it
    expect(() => decodeBeat(dagCbor.encode({ ...beat, state: { n: 2n ** 60n } }))).toThrow(MalformedBeatError)
    expect(() => decodeBeat(dagCbor.encode({ ...beat, state: { n: 2n ** 60n } }))).toThrow(/1152921504606846976/)
  })

  it('packages: an entry whose path reads as a drive letter (A: out of a sharded directory) is refused in listing, unpacking and packing alike', async () => {
    // a HAMT shard's link names carry a two-character prefix; a one-character one left "A:" after the exporter cut two
    const store = new MemoryBlockStore()
    const manifest = Buffer.from('{"app":"kv","version":"1.0.0","main":"server.js","protocol":1}')
    const root = await materialise({ kind: 'dir', shard: true, entries: [{ name: 'upgossip.json', node: { kind: 'raw', bytes: manifest } }, { name: 'server.js', node: { kind: 'raw', bytes: Uint8Array.of(0x2f, 0x2f) } }, { name: ' A:', node: { kind: 'raw', bytes: new Uint8Array() } }] }, store)
    await expect(listPackageFiles(root, store)).rejects.toThrow(UnsafePathError)
    await expect(listPackageFiles(root, store)).rejects.toThrow('a drive-letter path')
    const dir = await tempDir()
    await expect(unpackPackage(root, store, path.join(dir, 'out'))).rejects.toThrow(UnsafePathError)
    await fs.mkdir(path.join(dir, 'src'))
    await fs.writeFile(path.join(dir, 'src', 'C:x'), 'x')
    await expect(packDirectory(path.join(dir, 'src'), new MemoryBlockStore())).rejects.toThrow(/C:x is refused: a drive-letter path/)
  })

  it('toCid: bytes that are not a CID are UnsupportedCidError, not a RangeError', () => {
    expect(() => toCid(new Uint8Array(0))).toThrow(UnsupportedCidError)
    expect(() => toCid({ bytes: Uint8Array.of(0xff, 0xff) })).toThrow(UnsupportedCidError)
  })

  it('key files: scrypt parameters asking for minutes of work are refused unopened', async () => {
    const file = (N: number, r: number, p: number): string => JSON.stringify({
      type: 'upgossip-publisher-key',
      version: 1,
      publicKey: 'z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
      encrypted: { kdf: 'scrypt', N, r, p, salt: 'AAAA', cipher: 'aes-256-gcm', iv: 'AAAA', tag: 'AAAA', ciphertext: 'AAAA' }
    })
    const started = Date.now()
    await expect(decodeKeyFile(file(1 << 20, 32, 16), 'pw')).rejects.toThrow(KeyFileInvalidError)
    await expect(decodeKeyFile(file(3000, 8, 1), 'pw')).rejects.toThrow(/power of two/)
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it('remote errors: a name that is not an error name is not taken, and an empty message gets one', () => {
    // a peer answering a call chose the name: it went into logs and the refusals metric's labels
    const err = new RemoteNamedError(' '.repeat(100) + '\n{"x":1}', '')
    expect(err.name).toBe('RemoteNamedError')
    expect(err.message.length).toBeGreaterThan(0)
    expect(new RemoteNamedError('NotFoundError', 'no such key').name).toBe('NotFoundError')
  })

  it('packages: an entry that is not UnixFS is NotAPackageError, not the exporter\'s own error (a 500 from POST /publish)', async () => {
    const store = new MemoryBlockStore()
    const put = async (code: number, bytes: Uint8Array): Promise<CID> => {
      const cid = CID.createV1(code, await sha256.digest(bytes))
      await store.put(cid, bytes)
      return cid
    }
    const notUnixFs = await put(0x70, dagPb.encode({ Links: [] }))
    const manifest = await put(0x55, new TextEncoder().encode('{"app":"kv","version":"1.0.0","main":"upgossip.json","protocol":1}'))
    // UnixFS Data of a directory: field 1 (type) = 1
    const root = await put(0x70, dagPb.encode(dagPb.prepare({ Data: Uint8Array.of(0x08, 0x01), Links: [{ Name: 'a', Hash: notUnixFs, Tsize: 2 }, { Name: 'upgossip.json', Hash: manifest, Tsize: 60 }] })))
    await expect(listPackageFiles(root, store)).rejects.toThrow(NotAPackageError)
    await expect(readPackageManifest(root, store)).rejects.toThrow(NotAPackageError)
  })

  it('data-dir files: damaged node.json, trust.json and control.json are refused by name, not SyntaxError / TypeError / a bare UpgossipError', async () => {
    const data = await tempDir()
    await fs.writeFile(path.join(data, 'node.json'), '{')
    await expect(readNodeState(path.join(data, 'node.json'))).rejects.toThrow(NodeStateDamagedError)
    await fs.writeFile(path.join(data, 'trust.json'), '{')
    await expect(loadTrustStore(data)).rejects.toThrow(TrustFileInvalidError)
    await fs.writeFile(path.join(data, 'control.json'), 'null')
    await expect(resolveEndpoint({ data })).rejects.toThrow(DaemonUnreachableError)
  })

  it('release store: an entry whose .json is damaged is skipped and reported, not loaded with a state that does not exist', async () => {
    const dir = await tempDir()
    const key = await generatePublisherKey()
    const record = { app: 'kv', version: '1.0.0', previous: null, package: CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), size: 1, manifest: { app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 }, issued: '2026-01-01T00:00:00Z', expires: '2027-01-01T00:00:00Z' }
    const id = await releaseId(record)
    await fs.writeFile(path.join(dir, `${id.toString()}.cbor`), encodeSignedRelease({ record, signatures: [await signReleaseId(id, key)] }))
    await fs.writeFile(path.join(dir, `${id.toString()}.json`), JSON.stringify({ state: { '/': 'x' }, admitted: 7 }))
    const book = new ReleaseBook({ dir, trust: () => TrustPolicy.parse({ apps: {} }), floor: () => undefined })
    const problems = await book.load()
    expect(book.list()).toEqual([])
    expect(problems.length).toBe(1)
  })

  it('IPC: an app\'s error whose message is not text settles the call with a named error; a malformed send is MalformedIpcMessageError', async () => {
    const proc = new AppProcess({ app: 'kv', version: '1.0.0', packageDir: '/tmp', main: 'server.js', stateDir: '/tmp/state', config: null, peerId: 'self', logFile: '/tmp/app.log', protocol: 1, simulations: [], onRoute: async () => ({ self: true }), onSend: async () => null, onPeers: () => [] })
    Object.assign(proc, { child: { connected: false } })
    const onMessage = (proc as unknown as { onMessage: (m: unknown) => void }).onMessage.bind(proc)
    const call = proc.callOut(null, {}, 1000)
    // String() of { toString: 0 } throws: the call was left pending and the message dropped as malformed
    onMessage({ t: 'call-out-result', id: 1, ok: false, error: { name: 'NotFound', message: { toString: 0 } } })
    await expect(call).rejects.toThrow(RemoteNamedError)
    expect(() => { onMessage({ t: 'send' }) }).toThrow(MalformedIpcMessageError)
  })

  it('control API: POST /call answers a remote big integer exactly and a cycle with 422, and a body with a hostile "length" with 400 — each was a 500', async () => {
    let answer: unknown = 2n ** 70n
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const api = new ControlApi({ api: stubDaemonApi({ call: async () => answer }), port: 0, token: 't' })
    await api.start()
    try {
      const call = async (body: string): Promise<Response> => await fetch(`${api.url}/call`, { method: 'POST', headers: { authorization: 'Bearer t', 'content-type': 'application/json' }, body })
      let res = await call('{"request":1}')
      expect(res.status).toBe(200)
      expect(await res.text()).toContain('1180591620717411303424')
      answer = cyclic
      res = await call('{"request":1}')
      expect(res.status).toBe(422)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UnencodableValueError')
      res = await call('{"peer":{"length":{"valueOf":0,"toString":0}},"request":1}')
      expect(res.status).toBe(400)
    } finally {
      await api.stop()
    }
  })

  it('schedule modules: a module that posts null from its worker does not hold — it killed the daemon with an uncaught TypeError', async () => {
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'schedule.js'), "import { parentPort } from 'node:worker_threads'\nparentPort.postMessage(null)\nexport default () => true\n")
    const result = await runModuleRule(dir, { rule: 'module', path: 'schedule.js', timeLimit: '10s' }, { idleFor: () => 0 } as unknown as ScheduleContext)
    expect(result.holds).toBe(false)
  })

  it('lock file: a lock whose host is not text is damaged and taken over, not a TypeError while refusing it', async () => {
    const data = await tempDir()
    await fs.writeFile(path.join(data, 'lock'), JSON.stringify({ pid: 1, host: [[{ toString: '' }]], since: '2026-01-01T00:00:00Z' }))
    const lock = await lockDataDir(data)
    await lock.release()
  })
})
