/**
 * The `classes` scenario: a network of two classes of node (testnet/apps/classes): stores,
 * which keep keys, and clients, which keep each key on one store and keep load on every
 * store, calling them with `node.call(peer, request, { app: 'store' })`. The store class
 * rolls out first; the clients' next release waits on `after` store `>=2.0.0` and follows.
 * One store and one client wait for approval, so each mixed phase (stores on 1.0.0 and
 * 2.0.0, then clients on 1.0.0 and 2.0.0) holds still long enough to be measured.
 */
import fs from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { TestnetApp } from './apps.js'
import type { DaemonProcess } from './daemon-process.js'
import { KV_CODECS } from './load.js'
import type { KvClientCodec } from './load.js'
import { waitRelease } from './scenario-kit.js'
import type { Scenario } from './scenario-kit.js'
import type { Testnet } from './testnet.js'
import { upgradeTimes } from './testnet.js'
import type { TestnetRelease } from './workspace.js'

/** The fewest peers: two stores and two clients (one of each waits for approval). */
export const CLASSES_MIN_PEERS = 4
/** Calls each client must make to each store within a mixed phase for it to count. */
const CALLS_PER_PHASE = 2

function major (version: string): number {
  const n = Number(version.split('.')[0])
  return Number.isFinite(n) ? n : 1
}

/** A store 2 entry from an answer in protocol 2: `{ entry: { value, rev } | null }`. */
export function storeEntry (response: unknown): { value: unknown, rev: unknown } | null {
  if (response == null || typeof response !== 'object' || !('entry' in response)) throw new Error(`answer ${JSON.stringify(response)?.slice(0, 120)} has no "entry"`)
  return (response as { entry: { value: unknown, rev: unknown } | null }).entry
}

/** store's protocol 2 (testnet/apps/classes/store/v2). Protocol 1 is kv 1's shape. */
const STORE_2: KvClientCodec = {
  protocol: 2,
  put: (key, value) => ({ cmd: 'set', key, value }),
  get: key => ({ cmd: 'get', key }),
  value: response => storeEntry(response)?.value ?? null
}

/** The server class of the two-class demo (testnet/apps/classes/store). */
export const STORE_APP: TestnetApp = {
  name: 'store',
  dir: fileURLToPath(new URL('../../testnet/apps/classes/store/', import.meta.url)),
  codec: protocol => {
    if (protocol === 1) return KV_CODECS[1] as KvClientCodec
    if (protocol === 2) return STORE_2
    throw new Error(`store has no protocol ${protocol}`)
  },
  native: version => Math.min(2, Math.max(1, major(version)))
}

/** The caller class (testnet/apps/classes/client): its own protocol is 1 in both versions; what changes is the store protocol it calls. */
export const CLIENT_APP: TestnetApp = {
  name: 'client',
  dir: fileURLToPath(new URL('../../testnet/apps/classes/client/', import.meta.url)),
  codec: protocol => {
    if (protocol === 1) return KV_CODECS[1] as KvClientCodec
    throw new Error(`client has no protocol ${protocol}`)
  },
  native: () => 1
}

/** What a client answers to `{ stats: true }`: its calls to stores since it was installed. */
export interface ClientStats {
  version: string
  /** The store protocol it calls in (its manifest's `calls.store`). */
  calls: number
  ok: number
  failed: number
  byStore: Record<string, { ok: number, failed: number }>
  errors: string[]
}

async function statsOf (client: DaemonProcess): Promise<ClientStats> {
  const s = await client.call({ stats: true }, { protocol: 1 }) as ClientStats | null
  if (s == null || typeof s.ok !== 'number' || typeof s.byStore !== 'object') throw new Error(`${client.name} answered ${JSON.stringify(s)?.slice(0, 120)} to { stats: true }`)
  return s
}

/** Calls from one client to one store between two readings of its stats. */
function between (a: ClientStats, b: ClientStats, store: string): { ok: number, failed: number } {
  const x = a.byStore[store] ?? { ok: 0, failed: 0 }
  const y = b.byStore[store] ?? { ok: 0, failed: 0 }
  return { ok: y.ok - x.ok, failed: y.failed - x.failed }
}

/** A mixed phase, measured: every client's calls to every store while it held still. */
interface Phase {
  what: string
  /** Per client: its version, the store protocol it called, and its calls to each store. */
  clients: Array<{ name: string, version: string, calls: number, byStore: Array<{ name: string, version: string, ok: number, failed: number }>, errors: string[] }>
}

/** Wait until every client has made {@link CALLS_PER_PHASE} more answered calls to every store, and say what they were. */
async function measurePhase (net: Testnet, what: string, clients: DaemonProcess[], stores: DaemonProcess[]): Promise<Phase> {
  const before = await Promise.all(clients.map(statsOf))
  let after = before
  await net.waitUntil(`every client to call every store ${CALLS_PER_PHASE} times (${what})`, async () => {
    after = await Promise.all(clients.map(statsOf))
    return clients.every((_, i) => stores.every(s => between(before[i] as ClientStats, after[i] as ClientStats, s.peerId).ok >= CALLS_PER_PHASE))
  })
  const storeVersions = await Promise.all(stores.map(async s => (await s.status()).version ?? 'none'))
  const phase: Phase = {
    what,
    clients: clients.map((c, i) => ({
      name: c.name,
      version: (after[i] as ClientStats).version,
      calls: (after[i] as ClientStats).calls,
      byStore: stores.map((s, j) => ({ name: s.name, version: storeVersions[j] as string, ...between(before[i] as ClientStats, after[i] as ClientStats, s.peerId) })),
      errors: (after[i] as ClientStats).errors
    }))
  }
  net.monitor.note('check', `measured ${what}: ${phase.clients.map(c => `${c.name} (${c.version}) → ${c.byStore.map(s => `${s.name} (${s.version}) ${s.ok} ok/${s.failed} failed`).join(', ')}`).join('; ')}`)
  return phase
}

/** The check: no client's call to a store failed from the first publish to the last switch, and in each mixed phase every client called every store. */
function checkCrossClassCalls (start: ClientStats[], end: ClientStats[], clients: DaemonProcess[], phases: Phase[]): string {
  const failed = clients.map((c, i) => ({ c, n: (end[i] as ClientStats).failed - (start[i] as ClientStats).failed, errors: (end[i] as ClientStats).errors }))
  const bad = failed.filter(f => f.n !== 0)
  if (bad.length > 0) throw new Error(bad.map(f => `${f.c.name}: ${f.n} failed calls to stores (last: ${f.errors.slice(-2).join(' | ')})`).join('; '))
  const total = clients.reduce((sum, _, i) => sum + (end[i] as ClientStats).ok - (start[i] as ClientStats).ok, 0)
  const described: string[] = []
  for (const p of phases) {
    const pairs = p.clients.flatMap(c => c.byStore.map(s => ({ c, s })))
    const missed = pairs.filter(({ s }) => s.failed > 0 || s.ok < CALLS_PER_PHASE)
    if (missed.length > 0) throw new Error(`${p.what}: ${missed.map(({ c, s }) => `${c.name} → ${s.name}: ${s.ok} ok, ${s.failed} failed`).join('; ')}`)
    const okCalls = pairs.reduce((sum, { s }) => sum + s.ok, 0)
    const kinds = [...new Set(pairs.map(({ c, s }) => `client ${c.version} (protocol ${c.calls}) → store ${s.version}`))].join(', ')
    described.push(`${p.what}: ${okCalls} calls, every client to every store (${kinds})`)
  }
  return `${total} calls from clients to stores between the first publish and the last switch, 0 failed; ${described.join('; ')}`
}

/** The check: every client started its switch after the last store committed 2.0.0. */
async function checkClientsAfterStores (net: Testnet, stores: DaemonProcess[], clients: DaemonProcess[], s2: TestnetRelease, c2: TestnetRelease, waited: string): Promise<string> {
  const histories = await net.histories()
  const commits = stores.map(s => ({ s, t: upgradeTimes(histories.get(s) ?? [], s2.id).committed }))
  const missing = commits.filter(c => c.t == null)
  if (missing.length > 0) throw new Error(`${missing.map(c => c.s.name).join(', ')} never committed store 2.0.0`)
  const last = commits.reduce((a, b) => (b.t as number) > (a.t as number) ? b : a)
  const starts = clients.map(c => ({ c, t: upgradeTimes(histories.get(c) ?? [], c2.id).started }))
  const early = starts.filter(x => x.t == null || x.t <= (last.t as number))
  if (early.length > 0) throw new Error(early.map(x => `${x.c.name} started client 2.0.0 ${x.t == null ? 'never' : `${((last.t as number) - x.t) / 1000} s before ${last.s.name} committed store 2.0.0`}`).join('; '))
  return `the last store, ${last.s.name}, committed 2.0.0 at ${new Date(last.t as number).toISOString().slice(11, 23)}; ` +
    `clients started ${starts.map(x => `${x.c.name} +${(((x.t as number) - (last.t as number)) / 1000).toFixed(1)} s`).join(', ')} after it; before that, ${waited}`
}

/** The check: every seed written on 1.0.0 reads back on 2.0.0, and on the store that holds it as rev 0 (carried by store 2.0.0's up transform). */
async function checkStateCarried (net: Testnet, stores: DaemonProcess[], clients: DaemonProcess[]): Promise<string> {
  const holders = new Map<string, string>()
  for (const c of clients) {
    const answer = await c.call({ op: 'get', key: `seed-${c.name}` }, { protocol: 1 }) as { value?: unknown, store?: string }
    if (answer.value !== net.seedOf(c.name)) throw new Error(`${c.name} (client 2.0.0) reads seed-${c.name} as ${JSON.stringify(answer.value)}, expected ${JSON.stringify(net.seedOf(c.name))}`)
    const store = stores.find(s => s.peerId === answer.store)
    if (store == null) throw new Error(`${c.name} answered from ${String(answer.store)}, not a store of this network`)
    holders.set(c.name, store.name)
  }
  const wanted = [...stores.map(s => ({ key: `seed-${s.name}`, seedOf: s.name, on: s })), ...clients.map(c => ({ key: `seed-${c.name}`, seedOf: c.name, on: net.peer(holders.get(c.name) as string) }))]
  for (const w of wanted) {
    const entry = storeEntry(await w.on.call({ cmd: 'get', key: w.key }, { protocol: 2 }))
    if (entry?.value !== net.seedOf(w.seedOf) || entry.rev !== 0) throw new Error(`${w.on.name} (store 2.0.0) holds ${w.key} as ${JSON.stringify(entry)}, expected { value: ${JSON.stringify(net.seedOf(w.seedOf))}, rev: 0 }`)
  }
  return `${wanted.length} seeds written on 1.0.0 (${stores.length} on the stores, ${clients.length} through the clients: ${clients.map(c => `${c.name}'s on ${holders.get(c.name) ?? '?'}`).join(', ')}) read back through the 2.0.0 clients and, ` +
    'on the store that holds each, in protocol 2 as { value, rev: 0 }: carried by store 2.0.0\'s up transform'
}

/** What the clients' 2.0.0 waits on, as `peer-3 on after (1 of 2 peers of store …)`. */
async function waitingOf (clients: DaemonProcess[], c2: TestnetRelease): Promise<string> {
  const parts = []
  for (const c of clients) {
    const r = (await c.status()).releases.find(x => x.id === c2.id)
    parts.push(`${c.name} waited on ${r?.waitingOn ?? r?.state ?? 'nothing'}${r?.reason == null ? '' : ` (${r.reason})`}`)
  }
  return parts.join('; ')
}

export const classes: Scenario = {
  name: 'classes',
  summary: 'two classes of node, stores and the clients that call them: store v1 → v2 first (rolling), client v1 → v2 waits on `after` store >=2.0.0 and follows; one store and one client wait for approval, so both mixed phases are measured',
  app: STORE_APP,
  otherApps: [CLIENT_APP],
  peers: CLASSES_MIN_PEERS,
  minPeers: CLASSES_MIN_PEERS,
  async run (net) {
    const n = net.options.peers
    if (n < CLASSES_MIN_PEERS) throw new Error(`the classes scenario needs at least ${CLASSES_MIN_PEERS} peers (2 stores, 2 clients), not ${n}`)
    const storeCount = Math.ceil(n / 2)
    const policy = net.ws.file('approve-policy.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'approve' }] }))
    const holdout = (i: number): boolean => i === storeCount - 1 || i === n - 1
    const s1 = await net.release(1)
    const c1 = await net.release(1, {}, [0], CLIENT_APP)
    await net.startNetwork(n, s1, {
      releaseOf: i => i < storeCount ? s1 : c1,
      argsOf: i => holdout(i) ? ['--policy', policy, '--label', 'role=holdout'] : [],
      // the load goes through the clients
      loaded: i => i >= storeCount
    })
    const stores = net.peers.slice(0, storeCount)
    const clients = net.peers.slice(storeCount)
    const storeHoldout = stores.at(-1) as DaemonProcess
    const clientHoldout = clients.at(-1) as DaemonProcess
    net.monitor.note('classes', `stores ${stores.map(p => p.name).join(', ')}; clients ${clients.map(p => p.name).join(', ')}; holdouts ${storeHoldout.name}, ${clientHoldout.name}`)
    await measurePhase(net, 'every peer on 1.0.0', clients, stores)

    const s2 = await net.release(2)
    const c2 = await net.release(2, {}, [0], CLIENT_APP)
    const start = await Promise.all(clients.map(statsOf))
    await net.publish(s2, stores[0])
    await net.publish(c2, clients[0])
    // phase A: the stores roll, the last one waits for approval; the clients wait on `after`
    await net.waitVersion('2.0.0', stores.filter(p => p !== storeHoldout))
    await waitRelease(net, storeHoldout, s2, ['waiting'], 'approve')
    await waitRelease(net, clientHoldout, c2, ['waiting'], 'approve')
    // the other clients saw every store but the holdout run 2.0.0, and still wait
    const seen = `${stores.length - 1} of ${stores.length} peers of store run a version in >=2.0.0`
    for (const c of clients.filter(c => c !== clientHoldout)) {
      await net.waitUntil(`${c.name} to wait on after (${seen})`, async () => {
        const r = (await c.status()).releases.find(x => x.id === c2.id)
        return r?.state === 'waiting' && r.waitingOn === 'after' && r.reason?.startsWith(seen) === true
      })
    }
    const waited = await waitingOf(clients.filter(c => c !== clientHoldout), c2)
    const phases = [await measurePhase(net, 'stores on 1.0.0 and 2.0.0, clients on 1.0.0', clients, stores)]
    net.monitor.note('approve', `approve store ${s2.version} on ${storeHoldout.name}`)
    await storeHoldout.api('POST', `/approve/${s2.id}`)
    await net.waitVersion('2.0.0', stores)
    // phase B: the clients roll, the last one waits for approval
    await net.waitVersion('2.0.0', clients.filter(p => p !== clientHoldout))
    await waitRelease(net, clientHoldout, c2, ['waiting'], 'approve')
    phases.push(await measurePhase(net, 'clients on 1.0.0 and 2.0.0, stores on 2.0.0', clients, stores))
    net.monitor.note('approve', `approve client ${c2.version} on ${clientHoldout.name}`)
    await clientHoldout.api('POST', `/approve/${c2.id}`)
    await net.waitVersion('2.0.0')
    const end = await Promise.all(clients.map(statsOf))

    await net.checkThat('every cross-class call in the mixed phases answered', async () => checkCrossClassCalls(start, end, clients, phases))
    await net.checkThat('the clients switched only after every store ran 2.0.0', async () => await checkClientsAfterStores(net, stores, clients, s2, c2, waited))
    await net.checkThat('state written before the rollout reads back (store\'s up transform)', async () => await checkStateCarried(net, stores, clients))
    return '2.0.0'
  }
}
