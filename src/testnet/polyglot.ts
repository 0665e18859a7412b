/**
 * The `polyglot` scenario: the rolling upgrade of `rolling`, run on pykv
 * (testnet/apps/pykv), a Python program with no SDK that the daemons run as a process app.
 *
 * Its clients go through `POST /call` with `"protocol": 1` and HTTP request messages: that
 * is the daemon's entry for a client written against one version, so every request is held
 * while its peer switches and, once the peer runs 2.0.0, translated by 2.0.0's past SO (in
 * the daemon) on its way to the Python server, the same path a 1.0.0 peer's copy takes.
 * The proxy carries no protocol: a v1 request to the peer's own host held across the switch
 * would reach 2.0.0 untranslated. The proxy is busy all the same: pykv copies every write
 * to the other peers through it, and the mixed-network check writes and reads through it.
 */
import fs from 'node:fs/promises'
import http from 'node:http'
import { PYKV_APP, pykvEntry, requirePython } from './apps.js'
import type { DaemonProcess } from './daemon-process.js'
import { mostAtOnce, waitRelease } from './scenario-kit.js'
import type { Scenario } from './scenario-kit.js'
import type { Testnet } from './testnet.js'

/** Quicker health than pykv ships (5 s), as the kv demo has: each switch waits `stableFor`. */
const HEALTH = { readyWithin: '15s', stableFor: '1s' }
/** How long a copy may take to reach every peer. */
const COPY_WITHIN_MS = 20_000

/** An HTTP exchange through `peer`'s proxy, to `url` (absolute: `http://<peer host>/path`). */
async function viaProxy (peer: DaemonProcess, method: string, url: string, body?: string): Promise<{ status: number, body: string }> {
  if (peer.control.proxy == null) throw new Error(`${peer.name}'s control.json names no proxy`)
  const proxy = new URL(peer.control.proxy)
  const auth = Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: proxy.hostname, port: proxy.port, method, path: url, timeout: 10_000, agent: false, headers: { 'proxy-authorization': `Basic ${auth}`, 'content-type': 'text/plain; charset=utf-8' } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }) })
      res.on('error', reject)
    })
    req.once('timeout', () => { req.destroy(new Error(`${peer.name}'s proxy: ${method} ${url} timed out`)) })
    req.once('error', reject)
    req.end(body)
  })
}

/** A request to `peer`'s own app through its proxy (its own host), as pykv's HTTP client makes its calls. */
async function ownApp (peer: DaemonProcess, method: string, path: string, body?: string): Promise<{ status: number, body: string }> {
  const peers = await viaProxy(peer, 'GET', 'http://upgossip/peers')
  const { selfHost } = JSON.parse(peers.body) as { selfHost: string }
  return await viaProxy(peer, method, `http://${selfHost}${path}`, body)
}

/** Wait until `peer` holds `key` = `value`, read through its proxy in its own protocol. */
async function waitHolds (net: Testnet, peer: DaemonProcess, protocol: number, key: string, value: string): Promise<void> {
  const path = `${protocol === 1 ? '/kv/' : '/v2/kv/'}${encodeURIComponent(key)}`
  await net.waitUntil(`${peer.name} (protocol ${protocol}) to read ${key} = ${JSON.stringify(value)}`, async () => {
    const answer = await ownApp(peer, 'GET', path)
    if (answer.status === 404) return false
    if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.body.slice(0, 200)}`)
    return (protocol === 1 ? answer.body : pykvEntry(answer).value) === value
  }, Math.min(COPY_WITHIN_MS, net.options.stepTimeoutMs))
}

/** A write on the v1 peer read on every v2 peer, and one on a v2 peer read on the v1 peer: copies through the proxies, translated by the SOs. */
async function copiesAcross (net: Testnet, v1: DaemonProcess, v2s: DaemonProcess[]): Promise<string> {
  const started = Date.now()
  const key1 = `mixed-from-${v1.name}`
  const value1 = `written on ${v1.name} (1.0.0) at ${net.elapsed()} ms`
  const put1 = await ownApp(v1, 'PUT', `/kv/${encodeURIComponent(key1)}`, value1)
  if (put1.status !== 200) throw new Error(`${v1.name} PUT /kv/${key1}: HTTP ${put1.status}: ${put1.body.slice(0, 200)}`)
  for (const p of v2s) await waitHolds(net, p, 2, key1, value1)
  const v2 = v2s[0] as DaemonProcess
  const key2 = `mixed-from-${v2.name}`
  const value2 = `written on ${v2.name} (2.0.0) at ${net.elapsed()} ms`
  const put2 = await ownApp(v2, 'PUT', `/v2/kv/${encodeURIComponent(key2)}`, JSON.stringify({ value: value2 }))
  if (put2.status !== 200) throw new Error(`${v2.name} PUT /v2/kv/${key2}: HTTP ${put2.status}: ${put2.body.slice(0, 200)}`)
  await waitHolds(net, v1, 1, key2, value2)
  return `${v1.name} (1.0.0) wrote ${key1}, ${v2s.map(p => p.name).join(' and ')} (2.0.0) read it; ${v2.name} wrote ${key2}, ${v1.name} read it ` +
    `(both copied by pykv through its proxy, in ${((Date.now() - started) / 1000).toFixed(1)} s); ` +
    `${await net.readAcross(v1, 1, v2)}; ${await net.readAcross(v2, 2, v1)}`
}

/** Every peer reads every peer's seed (its own and the copies pykv 1.0.0 made of the others). */
async function waitSeedsCopied (net: Testnet): Promise<void> {
  await net.waitUntil('every peer to hold every seed (copied by pykv 1.0.0 through the proxies)', async () => {
    for (const p of net.peers) {
      for (const s of net.peers) {
        if (net.codec.value(await p.call(net.codec.get(`seed-${s.name}`), { protocol: net.codec.protocol })) !== net.seedOf(s.name)) return false
      }
    }
    return true
  })
}

/** Every seed on every peer, read in protocol 2 as 2.0.0 holds it: `updated` 0 is up.py's mark on state from 1.0.0. */
async function checkUpPy (net: Testnet): Promise<string> {
  const codec = net.app.codec(2)
  for (const p of net.peers) {
    for (const s of net.peers) {
      const entry = pykvEntry(await p.call(codec.get(`seed-${s.name}`), { protocol: 2 }))
      if (entry.value !== net.seedOf(s.name) || entry.updated !== 0) throw new Error(`${p.name}: seed-${s.name} is ${JSON.stringify(entry)}, expected { value: ${JSON.stringify(net.seedOf(s.name))}, updated: 0 }`)
    }
  }
  return `each of ${net.peers.length} peers holds the ${net.peers.length} seeds written on 1.0.0 (its own and the copies) as { value, updated: 0 }, read in protocol 2`
}

export const polyglot: Scenario = {
  name: 'polyglot',
  summary: 'pykv, a Python process app with no SDK: v1 → v2 one peer at a time (rolling); the last peer waits for approval, so v1 and v2 peers copy writes to each other through the daemons, translated by the SOs',
  app: PYKV_APP,
  // each peer runs a Python server beside its daemon, and switches one at a time
  peers: 4,
  preflight: async () => { await requirePython('the polyglot scenario runs pykv, a Python program') },
  async run (net) {
    const n = net.options.peers
    const policy = net.ws.file('approve-policy.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'approve' }] }))
    await net.startNetwork(n, await net.release(1, { health: HEALTH }), i => i === n - 1 ? ['--policy', policy, '--label', 'role=holdout'] : [])
    const holdout = net.peer(`peer-${n}`)
    const others = net.peers.filter(p => p !== holdout)
    await waitSeedsCopied(net)

    const v2 = await net.release(2, { schedule: [{ rule: 'rolling', max: 1 }], health: HEALTH })
    await net.publish(v2)
    await net.waitVersion('2.0.0', others)
    await waitRelease(net, holdout, v2, ['waiting'], 'approve')
    await net.checkThat("a v1 peer and v2 peers read each other's writes (pykv's copies through the proxy, translated by the SOs)", async () => await copiesAcross(net, holdout, others))
    net.monitor.note('approve', `approve ${v2.version} on ${holdout.name}`)
    await holdout.api('POST', `/approve/${v2.id}`)
    await net.waitVersion('2.0.0')
    const most = mostAtOnce(await net.histories(), v2)
    net.check('rolling: at most one peer switched to 2.0.0 at a time', most === 1, `${most} at most at once`)
    await net.checkThat('up.py carried the state written on 1.0.0 into 2.0.0', async () => await checkUpPy(net))
    return '2.0.0'
  }
}
