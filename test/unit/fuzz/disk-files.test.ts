/**
 * Fuzz properties of every file the daemon reads from its data directory or from paths
 * an operator gives it: the upgrade journal, node.json, controls.json, the trust store,
 * the release store, the lock file, peer.key, the private-network key, --config,
 * --policy, --app-config and events.jsonl. Damaged or hostile content is read to a value
 * of the right shape or refused by name; what the daemon writes reads back the same.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveEndpoint } from '../../../src/cli/control-client.js'
import { fixedClock } from '../../../src/clock.js'
import { OperatorControls } from '../../../src/daemon/controls.js'
import { readHistory } from '../../../src/daemon/operator.js'
import { DaemonConfigSchema, readDaemonConfig, readNodeState, resolveDaemonOptions, writeNodeState } from '../../../src/daemon/index.js'
import { parseDuration } from '../../../src/duration.js'
import { loadPeerKey, readPsk } from '../../../src/net/index.js'
import { ReleaseBook, TrustPolicy, encodeSignedRelease, generatePublisherKey, loadTrustStore, releaseId, signReleaseId } from '../../../src/release/index.js'
import type { PublisherKey, ReleaseState } from '../../../src/release/index.js'
import { readPolicy } from '../../../src/schedule/index.js'
import { readJsonFile } from '../../../src/schema.js'
import { DataDirLockedError, dataDirIdentity, lockDataDir } from '../../../src/store/index.js'
import { UPGRADE_STEPS, readJournal, writeJournal } from '../../../src/upgrade/index.js'
import { tempDir } from '../../helpers.js'
import { ruleArb } from './arbitraries.js'
import { RUNS, SLOW_RUNS } from './runs.js'
import { cborValueArb, expectNamedError, fieldArb, jsonText, mapKeyArb, nastyStringArb, optionalFieldArb, rarely, valueOrNamedError, withoutUndefined } from './support.js'

/** What a damaged or hand-edited file may hold: any bytes, any JSON, or JSON in the file's own shape. */
function fileArb (shaped: fc.Arbitrary<unknown>): fc.Arbitrary<Uint8Array | string> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 1, arbitrary: cborValueArb.map(jsonText) },
    { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '[]', '"x"', '{"length":{"valueOf":0,"toString":0}}', '\ufeff{}') },
    { weight: 6, arbitrary: shaped.map(jsonText) }
  )
}

let dir: string
let n = 0
/** A fresh file path for one case. */
async function fresh (name: string): Promise<string> {
  const d = path.join(dir, String(n++))
  await fs.mkdir(d, { recursive: true })
  return path.join(d, name)
}

beforeAll(async () => { dir = await tempDir() })
// every case leaves its files: at 10,000 cases a property that is many directories
afterAll(async () => { await fs.rm(dir, { recursive: true, force: true }) }, 600_000)

const versionArb = fc.record({ id: fieldArb(fc.constantFrom('bafyreiabc', 'x'), 10), version: fieldArb(fc.constantFrom('1.0.0', '2.0.0'), 10) }).map(withoutUndefined)

describe('journal.json', () => {
  const attemptArb = fc.record({
    kind: fieldArb(fc.constantFrom('upgrade', 'downgrade', 'sideways'), 10),
    from: fieldArb(versionArb, 10),
    to: fieldArb(versionArb, 10),
    step: fieldArb(fc.constantFrom(...UPGRADE_STEPS, 'dance'), 10),
    started: fieldArb(fc.constant('2026-01-01T00:00:00Z'), 10),
    reason: optionalFieldArb(fc.string({ maxLength: 20 }))
  }).map(withoutUndefined)
  const journalArb = fc.record({
    attempt: fieldArb(fc.option(attemptArb), 10),
    interrupted: fieldArb(fc.dictionary(mapKeyArb, fc.oneof({ weight: 8, arbitrary: fc.nat(5) }, { weight: 1, arbitrary: cborValueArb }), { maxKeys: 3, noNullPrototype: true }), 10),
    extra: rarely(fc.tuple(nastyStringArb, cborValueArb))
  }).map(({ extra, ...j }) => withoutUndefined(extra == null ? j : { ...j, [extra[0]]: extra[1] }))

  it('structured: a journal of any content is read to a valid journal or JournalDamagedError; a written journal reads back the same', async () => {
    await fc.assert(fc.asyncProperty(fileArb(journalArb), async content => {
      const file = await fresh('journal.json')
      await fs.writeFile(file, content)
      const result = await valueOrNamedError(async () => await readJournal(file), j => {
        if (j.attempt != null) expect(UPGRADE_STEPS).toContain(j.attempt.step)
        for (const count of Object.values(j.interrupted)) expect(Number.isInteger(count)).toBe(true)
      })
      if (result.ok) {
        await writeJournal(file, result.value)
        expect(await readJournal(file)).toEqual(result.value)
      }
    }), { numRuns: RUNS })
  })

  it('round trip: any journal the engine writes reads back the same', async () => {
    const valid = fc.record({
      attempt: fc.option(fc.record({ kind: fc.constantFrom('upgrade', 'downgrade'), from: fc.record({ id: fc.string(), version: fc.string() }), to: fc.record({ id: fc.string(), version: fc.string() }), step: fc.constantFrom(...UPGRADE_STEPS), started: fc.string(), reason: fc.string() }, { requiredKeys: ['kind', 'from', 'to', 'step', 'started'] })),
      interrupted: fc.dictionary(fc.string().filter(k => k !== '__proto__'), fc.nat(), { noNullPrototype: true })
    })
    await fc.assert(fc.asyncProperty(valid, async journal => {
      const file = await fresh('journal.json')
      await writeJournal(file, journal)
      expect(await readJournal(file)).toEqual(journal)
    }), { numRuns: SLOW_RUNS })
  })
})

describe('node.json', () => {
  const nodeStateArb = fc.record({
    app: fieldArb(fc.option(fc.constantFrom('kv', 'demo')), 10),
    current: fieldArb(fc.option(versionArb), 10),
    previous: optionalFieldArb(fc.option(versionArb)),
    since: optionalFieldArb(fc.option(fc.nat())),
    extra: rarely(fc.tuple(nastyStringArb, cborValueArb))
  }).map(({ extra, ...s }) => withoutUndefined(extra == null ? s : { ...s, [extra[0]]: extra[1] }))

  it('structured: node.json of any content is read to a valid state or refused by name; a written state reads back the same', async () => {
    await fc.assert(fc.asyncProperty(fileArb(nodeStateArb), async content => {
      const file = await fresh('node.json')
      await fs.writeFile(file, content)
      const result = await valueOrNamedError(async () => await readNodeState(file), s => {
        expect(s.app === null || typeof s.app === 'string').toBe(true)
        expect(s.since === null || typeof s.since === 'number').toBe(true)
      })
      if (result.ok) {
        await writeNodeState(file, result.value)
        expect(await readNodeState(file)).toEqual(result.value)
      }
    }), { numRuns: RUNS })
  })

  it('round trip: any state the daemon writes reads back the same', async () => {
    const installed = fc.option(fc.record({ id: fc.string(), version: fc.string() }))
    await fc.assert(fc.asyncProperty(fc.record({ app: fc.option(fc.string()), current: installed, previous: installed, since: fc.option(fc.nat()) }), async state => {
      const file = await fresh('node.json')
      await writeNodeState(file, state)
      expect(await readNodeState(file)).toEqual(state)
    }), { numRuns: SLOW_RUNS })
  })
})

describe('controls.json', () => {
  it('structured: approvals and holds of any content load without throwing, keeping only release ids; what is saved loads back', async () => {
    const controlsArb = fc.record({ approved: fieldArb(fc.array(fc.oneof(fc.string({ maxLength: 10 }), cborValueArb), { maxLength: 3 }), 6), held: fieldArb(fc.array(fc.oneof(fc.string({ maxLength: 10 }), cborValueArb), { maxLength: 3 }), 6) }).map(withoutUndefined)
    await fc.assert(fc.asyncProperty(fileArb(controlsArb), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), async (content, ids) => {
      const file = await fresh('controls.json')
      await fs.writeFile(file, content)
      const controls = new OperatorControls(file)
      await controls.load()
      for (const id of ids) {
        await controls.approve(id)
        await controls.hold(id)
      }
      const again = new OperatorControls(file)
      await again.load()
      for (const id of ids) expect(again.isApproved(id) && again.isHeld(id)).toBe(true)
    }), { numRuns: SLOW_RUNS })
  })
})

describe('the trust store (trust.json in the data directory, --trust files)', () => {
  let key: PublisherKey
  beforeAll(async () => { key = await generatePublisherKey() })

  it('structured: a stored trust policy of any content is loaded or refused by name', async () => {
    const trustArb = fc.record({ apps: fieldArb(fc.dictionary(fc.oneof(fc.constant('kv'), mapKeyArb), fc.record({ publishers: fieldArb(fc.array(fc.oneof(fc.constant(key.id), nastyStringArb), { maxLength: 2 }), 10), threshold: fieldArb(fc.integer({ min: 0, max: 3 }), 10) }).map(withoutUndefined), { maxKeys: 2, noNullPrototype: true }), 10) }).map(withoutUndefined)
    await fc.assert(fc.asyncProperty(fileArb(trustArb), fc.option(fileArb(trustArb)), async (stored, seed) => {
      const data = path.dirname(await fresh('trust.json'))
      await fs.writeFile(path.join(data, 'trust.json'), stored)
      let seedFile: string | undefined
      if (seed != null) {
        seedFile = path.join(data, 'seed.json')
        await fs.writeFile(seedFile, seed)
      }
      await valueOrNamedError(async () => await loadTrustStore(data, { seed: seedFile }), ({ policy }) => { expect(policy).toBeInstanceOf(TrustPolicy) })
      await valueOrNamedError(async () => await loadTrustStore(data, { seed: seedFile, replace: true }))
      await valueOrNamedError(async () => await loadTrustStore(data))
    }), { numRuns: SLOW_RUNS })
  })
})

describe('the release store (releases/<id>.cbor and .json)', () => {
  const STATES: ReleaseState[] = ['fetching', 'staged', 'waiting', 'upgrading', 'active', 'superseded', 'failed', 'rolled-back', 'revoked', 'refused']

  it('structured: any release files load to entries of a known state, the rest reported; admitted releases load back unchanged', async () => {
    const key = await generatePublisherKey()
    const trust = TrustPolicy.parse({ apps: { kv: { publishers: [key.id], threshold: 1 } } })
    const now = Date.parse('2026-06-01T00:00:00Z')
    const metaArb = fc.record({ state: fieldArb(fc.constantFrom(...STATES, 'dancing'), 6), reason: optionalFieldArb(fc.string({ maxLength: 10 })), admitted: fieldArb(fc.constant('2026-01-01T00:00:00Z'), 6) }).map(withoutUndefined)
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 40 }), fileArb(metaArb), fc.boolean()), { maxLength: 3 }), async files => {
      const data = path.dirname(await fresh('x'))
      const releases = path.join(data, 'releases')
      await fs.mkdir(path.join(releases, 'revocations'), { recursive: true })
      const written = new Map<string, unknown>()
      for (const [valid, junk, meta, revocationJunk] of files) {
        const record = { app: 'kv', version: `1.0.${written.size}`, previous: null, package: CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), size: 1, manifest: { app: 'kv', version: `1.0.${written.size}`, main: 'server.js', protocol: 1 }, issued: '2026-01-01T00:00:00Z', expires: '2027-01-01T00:00:00Z' }
        const id = (await releaseId(record)).toString()
        const bytes = valid ? encodeSignedRelease({ record, signatures: [await signReleaseId(await releaseId(record), key)] }) : junk
        await fs.writeFile(path.join(releases, `${id}.cbor`), bytes)
        await fs.writeFile(path.join(releases, `${id}.json`), meta)
        if (revocationJunk) await fs.writeFile(path.join(releases, 'revocations', `${id}.cbor`), junk)
        written.set(id, meta)
      }
      const book = new ReleaseBook({ dir: releases, trust: () => trust, floor: () => undefined, clock: fixedClock(now) })
      const problems = await book.load()
      for (const entry of book.list()) {
        expect(STATES).toContain(entry.state)
        expect(typeof entry.admitted).toBe('string')
        expect(entry.reason === undefined || typeof entry.reason === 'string').toBe(true)
      }
      expect(book.list().length + problems.length).toBe(written.size)
      // what the book itself stores loads back the same
      for (const entry of book.list()) await book.setState(entry.id, entry.state, entry.reason)
      const again = new ReleaseBook({ dir: releases, trust: () => trust, floor: () => undefined, clock: fixedClock(now) })
      await again.load()
      for (const entry of book.list()) expect(again.get(entry.id)).toEqual(entry)
    }), { numRuns: SLOW_RUNS })
  })
})

describe('the lock, peer.key and the private-network key', () => {
  it('a lock file of any content is taken over or refused with DataDirLockedError', async () => {
    const lockArb = fc.record({ pid: fieldArb(fc.oneof(fc.constant(process.pid), fc.constantFrom(1, 0, -1, 2 ** 22 + 7, 1.5, 2 ** 53)), 6), host: fieldArb(fc.constantFrom('localhost', 'elsewhere'), 6), since: fc.constant('2026-01-01T00:00:00Z') }).map(withoutUndefined)
    await fc.assert(fc.asyncProperty(fileArb(lockArb), async content => {
      const data = path.dirname(await fresh('lock'))
      await fs.writeFile(path.join(data, 'lock'), content)
      const result = await valueOrNamedError(async () => await lockDataDir(data))
      if (result.ok) await result.value.release()
      else expect(result.error).toBeInstanceOf(DataDirLockedError)
    }), { numRuns: SLOW_RUNS })
  })

  it('peer.key of any content is a key or refused by name; a created key loads back the same', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.constantFrom(Uint8Array.of(0x08, 0x01, 0x12, 0x40), Uint8Array.of(0x08, 0x05, 0x12, 0x00), Uint8Array.of(0x08, 0x01, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f))), async bytes => {
      const file = await fresh('peer.key')
      await fs.writeFile(file, bytes)
      await valueOrNamedError(async () => await loadPeerKey(file))
    }), { numRuns: RUNS })
    const file = await fresh('peer.key')
    const created = await loadPeerKey(file)
    expect((await loadPeerKey(file)).publicKey.equals(created.publicKey)).toBe(true)
  })

  it('a private-network key of any content is read or refused by name', async () => {
    const pskArb = fc.tuple(fc.constantFrom('/key/swarm/psk/1.0.0/', '/key/swarm/psk/2.0.0/', ''), fc.constantFrom('/base16/', '/base64/'), fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }).map(b => Buffer.from(b).toString('hex')), nastyStringArb), fc.constantFrom('\n', '\r\n')).map(([a, b, c, nl]) => [a, b, c].join(nl))
    await fc.assert(fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 100 }), pskArb), async content => {
      const file = await fresh('swarm.key')
      // private, as a key must be: the content is what is under test
      await fs.writeFile(file, content, { mode: 0o600 })
      await valueOrNamedError(async () => await readPsk(file))
    }), { numRuns: RUNS })
  })
})

describe('operator files: --config, --policy, --app-config', () => {
  const configArb = fc.record({
    data: optionalFieldArb(nastyStringArb),
    listen: optionalFieldArb(fc.array(fc.oneof(fc.constantFrom('/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/4001', '/dns4/x/tcp/1'), nastyStringArb), { maxLength: 2 })),
    bootstrap: optionalFieldArb(fc.array(fc.oneof(fc.constantFrom('/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzh4t3YMGZUU3uhqTMy3i6HUfrXAqjKaA5AqLKUSdmEk', '/ip4/127.0.0.1/tcp/1'), nastyStringArb), { maxLength: 2 })),
    install: optionalFieldArb(nastyStringArb),
    app: optionalFieldArb(fc.oneof(fc.constant('kv'), nastyStringArb)),
    control: optionalFieldArb(fc.integer({ min: -1, max: 70000 })),
    label: optionalFieldArb(fc.array(fc.oneof(fc.constantFrom('zone=a', 'x=', '=y', 'a=b=c'), nastyStringArb), { maxLength: 3 })),
    network: optionalFieldArb(fc.oneof(fc.constantFrom('default', 'lab'), nastyStringArb)),
    mdns: optionalFieldArb(fc.boolean()),
    beatInterval: optionalFieldArb(fc.constantFrom('5s', '0ms', '1e3s', '9'.repeat(30) + 'd')),
    peerTimeout: optionalFieldArb(fc.constantFrom('30s', 'x')),
    minConnections: optionalFieldArb(fc.integer({ min: -1, max: 1001 })),
    maxPackageSize: optionalFieldArb(fc.oneof(fc.nat(), fc.constant(2 ** 60))),
    transformLimit: optionalFieldArb(fc.constantFrom('2m', '-1s')),
    callTimeout: optionalFieldArb(fc.constantFrom('30s', '')),
    extra: rarely(fc.tuple(nastyStringArb, cborValueArb))
  }).map(({ extra, ...c }) => withoutUndefined(extra == null ? c : { ...c, [extra[0]]: extra[1] }))

  it('structured: a --config file of any content becomes complete options or is refused by name', async () => {
    await fc.assert(fc.asyncProperty(fileArb(configArb), configArb, async (content, cli) => {
      const file = await fresh('config.json')
      await fs.writeFile(file, content)
      const config = await valueOrNamedError(async () => await readDaemonConfig(file))
      const parsedCli = DaemonConfigSchema.safeParse(cli)
      await valueOrNamedError(() => resolveDaemonOptions(parsedCli.success ? parsedCli.data : {}, config.ok ? config.value : {}), o => {
        expect(path.isAbsolute(o.data)).toBe(true)
        for (const ms of [o.beatIntervalMs, o.peerTimeoutMs, o.transformLimitMs, o.callTimeoutMs]) expect(Number.isSafeInteger(ms) && ms >= 0).toBe(true)
        expect(o.network).toMatch(/^[a-z0-9][a-z0-9._-]{0,62}$/)
      })
      await valueOrNamedError(() => resolveDaemonOptions(cli as never))
    }), { numRuns: RUNS })
  })

  it('structured: a --policy file of any content is a list of rules or refused by name', async () => {
    const policyArb = fc.record({ rules: fieldArb(fc.array(ruleArb, { maxLength: 4 }), 10), extra: rarely(fc.tuple(nastyStringArb, cborValueArb)) }).map(({ extra, ...p }) => withoutUndefined(extra == null ? p : { ...p, [extra[0]]: extra[1] }))
    await fc.assert(fc.asyncProperty(fileArb(policyArb), async content => {
      const file = await fresh('policy.json')
      await fs.writeFile(file, content)
      await valueOrNamedError(async () => await readPolicy(file), rules => {
        for (const r of rules) {
          expect(r.rule).not.toBe('module')
          if ('soak' in r) parseDuration(r.soak)
        }
      })
    }), { numRuns: RUNS })
  })

  it('--app-config and every other JSON file an operator names: any bytes are JSON or the caller\'s named error', async () => {
    class AppConfigError extends (await import('../../../src/errors.js')).UpgossipError { static override name = 'AppConfigError' }
    await fc.assert(fc.asyncProperty(fileArb(cborValueArb), async content => {
      const file = await fresh('app-config.json')
      await fs.writeFile(file, content)
      await valueOrNamedError(async () => await readJsonFile(file, '--app-config', m => new AppConfigError(m)))
    }), { numRuns: RUNS })
    const missing = await valueOrNamedError(async () => await readJsonFile(path.join(dir, 'nope.json'), '--app-config', m => new AppConfigError(m)))
    expect(missing.ok).toBe(false)
  })
})

describe('control.json (how the CLI finds its daemon)', () => {
  it('control.json of any content is an endpoint or DaemonUnreachableError', async () => {
    const controlArb = fc.record({ url: fieldArb(fc.constant('http://127.0.0.1:1'), 6), token: fieldArb(fc.string({ maxLength: 10 }), 6), peerId: optionalFieldArb(fc.string()), pid: optionalFieldArb(fc.constantFrom(process.pid, 1)) }).map(withoutUndefined)
    await fc.assert(fc.asyncProperty(fileArb(controlArb), async content => {
      const data = path.dirname(await fresh('control.json'))
      // the lock of a live daemon (this process): the content of control.json is what is read
      await fs.writeFile(path.join(data, 'lock'), JSON.stringify({ pid: process.pid, host: os.hostname(), since: 'x', dir: await dataDirIdentity(data) }))
      await fs.writeFile(path.join(data, 'control.json'), content)
      await valueOrNamedError(async () => await resolveEndpoint({ data }), e => { expect(typeof e.url === 'string' && typeof e.token === 'string').toBe(true) })
    }), { numRuns: RUNS })
  })
})

describe('events.jsonl (upgossip history)', () => {
  it('any lines are read to the history events among them, never a throw', async () => {
    const line = fc.oneof(fc.string({ maxLength: 30 }), cborValueArb.map(jsonText), fc.record({ type: fc.constantFrom('installed', 'upgrade-failed', 'fetch', '__proto__'), time: fc.constant('2026-01-01T00:00:00Z') }).map(jsonText), fc.constantFrom('null', '[]', '{"type":{"toString":1}}'))
    await fc.assert(fc.asyncProperty(fc.array(line, { maxLength: 6 }), async lines => {
      const data = path.dirname(await fresh('events.jsonl'))
      await fs.writeFile(path.join(data, 'events.jsonl'), lines.join('\n'))
      // the daemon's own reader of its events file, without a running daemon
      const history = await readHistory(path.join(data, 'events.jsonl'))
      for (const event of history) {
        expect(event !== null && typeof event === 'object' && !Array.isArray(event)).toBe(true)
        expect(typeof event.type).toBe('string')
      }
    }), { numRuns: RUNS })
  })
})

describe('anything the fuzzer finds must be refused by name', () => {
  it('the assertion itself fails on an unnamed error', () => {
    expect(() => { expectNamedError(new TypeError('x')) }).toThrow(/unnamed/)
  })
})
