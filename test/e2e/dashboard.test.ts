/**
 * The web dashboard in a real browser (headless Chromium driven by playwright-core)
 * during a small rollout on real daemons: it shows every peer and its version, the rule
 * each waiting peer waits on, per-release progress and the versions chart, updates live
 * (no reload) as peers move to 2.0.0, and keeps its chart across a reload done with
 * the cookie alone; its roll back button, confirmed, takes this peer back. With two classes in view (a store and its client), a table shows
 * each class's peers, versions and what they wait on.
 *
 * The browser is Debian's `chromium` (or `UPGOSSIP_CHROMIUM`); playwright-core never
 * downloads one. Without it the test is skipped, unless `UPGOSSIP_REQUIRE_BROWSER=1`
 * (CI), where that is a failure. `UPGOSSIP_SCREENSHOT=FILE.png` saves the page mid-way
 * (half the peers moved), and `UPGOSSIP_DASHBOARD_PEERS=N` (default 3) makes a bigger
 * network for that picture.
 */
import { existsSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import { kv3Version } from './support/kv3-app.js'
import { STORE_2, STORE_PAST, client, manifest, startStoreAndClient } from './support/store-client.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

const executablePath = process.env.UPGOSSIP_CHROMIUM ?? '/usr/bin/chromium'
const haveBrowser = existsSync(executablePath)
const requireBrowser = process.env.UPGOSSIP_REQUIRE_BROWSER === '1'
const screenshot = process.env.UPGOSSIP_SCREENSHOT
const N = Math.max(2, Number(process.env.UPGOSSIP_DASHBOARD_PEERS ?? 3))
if (!haveBrowser && !requireBrowser) {
  console.warn(`dashboard.test.ts: skipped, no Chromium at ${executablePath} (install Debian's "chromium" or set UPGOSSIP_CHROMIUM; UPGOSSIP_REQUIRE_BROWSER=1 makes this a failure)`)
}

let net: TestNet | undefined
let browser: Browser | undefined

afterEach(async () => {
  await browser?.close()
  browser = undefined
  await net?.close()
  net = undefined
})

interface PeerRow { peer: string, version: string, waiting: string, state: string, build: string }

/** What the page's peers table shows now. */
async function peerRows (page: Page): Promise<PeerRow[]> {
  return await page.$$eval('#peers tr[data-peer]', rows => rows.map(r => ({
    peer: (r as HTMLElement).dataset.peer ?? '',
    version: r.querySelector('.version')?.textContent ?? '',
    waiting: r.querySelector('.waiting')?.textContent ?? '',
    state: r.querySelector('.state')?.textContent ?? '',
    build: r.querySelector('.build')?.textContent ?? ''
  })))
}

/** The per-release progress cells of one version: "held/total" and "running/total". */
async function releaseProgress (page: Page, version: string): Promise<{ held: string, running: string } | undefined> {
  return await page.$$eval(`#releases tr[data-version="${version}"]`, rows => rows.map(r => ({
    held: r.querySelector('.held-by')?.textContent?.trim() ?? '',
    running: r.querySelector('.running-on')?.textContent?.trim() ?? ''
  }))[0])
}

/** Versions drawn in the chart. */
async function chartVersions (page: Page): Promise<string[]> {
  return await page.$$eval('#chart path[data-version]', paths => paths.map(p => p.getAttribute('data-version') ?? ''))
}

/** Poll the page until `check` holds; the timeout names what was awaited and what the page showed last. */
async function untilPage<T> (what: string, read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  let seen: T | undefined
  try {
    return await waitFor(what, async () => {
      seen = await read()
      return check(seen) ? seen : false
    }, timeoutMs, 200)
  } catch (err) {
    throw new Error(`${(err as Error).message}; the page showed ${JSON.stringify(seen)}`)
  }
}

/** A page in a fresh headless Chromium, and the errors its scripts throw. */
async function newPage (): Promise<{ page: Page, pageErrors: string[] }> {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    // root cannot use Chromium's sandbox; /dev/shm is small in containers
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage']
  })
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', err => { pageErrors.push(err.message) })
  return { page, pageErrors }
}

interface ClassRow { app: string, count: string, versions: string, waiting: string }

/** What the page's classes table shows now (nothing while it is hidden: one class in view). */
async function classRows (page: Page): Promise<ClassRow[]> {
  if (!await page.isVisible('#classes-card')) return []
  return await page.$$eval('#classes tr[data-app]', rows => rows.map(r => ({
    app: (r as HTMLElement).dataset.app ?? '',
    count: r.querySelector('.count')?.textContent ?? '',
    versions: (r.querySelector('.versions')?.textContent ?? '').replace(/\s+/g, ' ').trim(),
    waiting: (r.querySelector('.waiting')?.textContent ?? '').trim()
  })))
}

describe('web dashboard', () => {
  it.runIf(haveBrowser || requireBrowser)('shows a rollout live in a browser: peers, waiting rules, per-release progress, versions over time', async () => {
    if (!haveBrowser) throw new Error(`UPGOSSIP_REQUIRE_BROWSER=1 but there is no Chromium at ${executablePath}: install Debian's "chromium" or set UPGOSSIP_CHROMIUM`)
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kv3Version(1))
    const v2 = await net.releaseFiles(kv3Version(2, { schedule: [{ rule: 'approve' }] }))
    const a = await net.start('a', ['--install', v1.file, '--label', 'zone=a'])
    const peers: Peer[] = [a]
    for (let i = 1; i < N; i++) {
      const name = String.fromCharCode(97 + i)
      peers.push(await net.start(name, ['--install', v1.file, '--bootstrap', a.addr, '--label', `zone=${name}`]))
    }
    const ids = peers.map(p => p.peerId).sort()
    await waitFor('a to hear from every other peer', async () => (await a.status()).network.filter(p => p.version === '1.0.0').length === N - 1)

    const { page, pageErrors } = await newPage()

    // opened once with the token: a cookie, and the token leaves the address bar
    const opened = await page.goto(`${a.control.url}/?token=${a.control.token}`)
    expect(opened?.status()).toBe(200)
    expect(page.url()).toBe(`${a.control.url}/`)
    const rows = await untilPage(`the page to show ${N} peers on 1.0.0`, async () => await peerRows(page),
      rs => rs.length === N && rs.every(r => r.version.includes('1.0.0')))
    expect(rows.map(r => r.peer).sort()).toEqual(ids)
    expect(rows[0]?.peer).toBe(a.peerId) // this peer first
    // every peer's upgossip build, from its beats (this peer's from its status): the build these daemons run
    const { stdout: version } = await runCli(['--version'])
    for (const r of rows) expect(r.build, r.peer).toBe(version.trim())
    // a marker that a reload would wipe: every update below must arrive without one
    await page.evaluate(() => { (window as unknown as { marker: number }).marker = 42 })

    // the timeline is served (with the cookie alone) and the chart draws 1.0.0
    const timeline = await page.evaluate(async () => await (await fetch('/timeline')).json()) as { capacity: number, samples: Array<{ seq: number, time: string, versions: Record<string, number> }> }
    expect(timeline.capacity).toBe(2000)
    expect(timeline.samples.at(-1)?.versions).toEqual({ '1.0.0': N })
    await untilPage('the chart to draw 1.0.0', async () => await chartVersions(page), v => v.includes('1.0.0'))
    expect((await fetch(`${a.control.url}/timeline`)).status).toBe(401)

    // v2 waits for approval everywhere: every peer's row says so, from its own beats
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await untilPage('every peer to wait on approve', async () => await peerRows(page), rs => rs.length === N && rs.every(r => r.waiting.startsWith('approve')))
    await untilPage('2.0.0 to be held by every peer', async () => await releaseProgress(page, '2.0.0'), p => p?.held === `${N}/${N}` && p.running === `0/${N}`)
    // the peer table shows each peer's progress on the target release, as rollout status does
    await untilPage('every peer to hold all of 2.0.0', async () => await page.$$eval('#peers tr[data-peer] .download', cells => cells.map(c => (c.textContent ?? '').replace(/\s+/g, ' ').trim())),
      cells => cells.length === N && cells.every(c => c === '100% of 2.0.0'))

    // the dashboard's own approve button lets this peer go; the others keep waiting
    await page.click('#releases tr[data-version="2.0.0"] button[data-verb="approve"]')
    await untilPage('a to run 2.0.0 on the page', async () => await peerRows(page),
      rs => rs.find(r => r.peer === a.peerId)?.version.includes('2.0.0') === true && rs.filter(r => r.version.includes('1.0.0')).length === N - 1)
    await untilPage('the chart to gain 2.0.0', async () => await chartVersions(page), v => v.includes('1.0.0') && v.includes('2.0.0'))
    await untilPage(`2.0.0 to run on 1 of ${N}`, async () => await releaseProgress(page, '2.0.0'), p => p?.running === `1/${N}`)

    // the others one by one, each step seen on the page as it happens
    for (const [i, p] of peers.slice(1).entries()) {
      expect((await runCli(['approve', v2.id, '--data', p.dataDir])).code).toBe(0)
      await untilPage(`2.0.0 to run on ${i + 2} of ${N}`, async () => await releaseProgress(page, '2.0.0'), r => r?.running === `${i + 2}/${N}`)
      if (screenshot != null && i + 2 === Math.ceil(N / 2)) await page.screenshot({ path: screenshot, fullPage: true })
    }
    await untilPage('every peer to run 2.0.0 on the page', async () => await peerRows(page),
      rs => rs.length === N && rs.every(r => r.version.includes('2.0.0') && r.state.startsWith('running') && r.waiting === '–'))
    await untilPage(`2.0.0 to be held by and run on ${N} of ${N}`, async () => await releaseProgress(page, '2.0.0'), p => p?.held === `${N}/${N}` && p.running === `${N}/${N}`)
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42)

    // a 3.0.0 that cannot start, tried in zone a only: it fails and rolls back there, the
    // failure shows up, and the others show the halt that keeps them back
    const v3 = await net.releaseFiles({ ...kv3Version(3, { schedule: [{ rule: 'labels', match: { zone: 'a' } }] }), 'server.js': 'throw new Error("3.0.0 cannot start")\n' })
    expect((await runCli(['publish', v3.file, '--data', a.dataDir])).code).toBe(0)
    const failure = await untilPage('the failure of 3.0.0 on this peer', async () => await page.$$eval('#failures li', items => items.map(i => ({
      release: (i as HTMLElement).dataset.failedRelease, peer: (i as HTMLElement).dataset.failedPeer, text: i.textContent ?? ''
    }))), items => items.some(i => i.release === v3.id) && items.some(i => i.peer === a.peerId && i.text.includes('3.0.0')))
    expect(failure.find(i => i.release === v3.id)?.text).toMatch(/3\.0\.0\s*failed/)
    await untilPage('a to run 2.0.0 again, with 3.0.0 among its failures', async () => await page.$$eval(`#peers tr[data-peer="${a.peerId}"]`, rs => rs.map(r => ({
      version: r.querySelector('.version')?.textContent ?? '', failures: r.querySelector('.failures')?.textContent ?? '', state: r.querySelector('.state')?.textContent ?? ''
    }))[0]), r => r?.version.includes('2.0.0') === true && r.failures.includes('3.0.0') && r.state.startsWith('running'))
    // a's failure report halts 3.0.0 everywhere (halt-on-failures is checked first), so once
    // its beat is in, that is the rule the others show, whatever labels say
    await untilPage('the other peers to show the halt of 3.0.0', async () => await peerRows(page),
      rs => rs.filter(r => r.peer !== a.peerId).every(r => r.waiting.startsWith('halt-on-failures for 3.0.0')))

    // a reload without the token works by the cookie, and the chart keeps its history
    await page.goto(`${a.control.url}/`)
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBeUndefined()
    await untilPage(`the reloaded page to show ${N} peers on 2.0.0`, async () => await peerRows(page), rs => rs.length === N && rs.every(r => r.version.includes('2.0.0')))
    await untilPage('the reloaded chart to draw both versions', async () => await chartVersions(page), v => v.includes('1.0.0') && v.includes('2.0.0'))

    // this peer's roll back button, confirmed in a dialog: a goes back to 1.0.0
    const dialogs: string[] = []
    page.once('dialog', dialog => { dialogs.push(dialog.message()); void dialog.accept() })
    await page.click(`#peers tr[data-peer="${a.peerId}"] button#rollback`)
    await untilPage('a to run 1.0.0 again on the page', async () => await peerRows(page),
      rs => rs.find(r => r.peer === a.peerId)?.version.includes('1.0.0') === true && rs.find(r => r.peer === a.peerId)?.state.startsWith('running') === true, 60_000)
    expect(dialogs[0]).toMatch(/Roll this peer back/)
    expect(pageErrors).toEqual([])
  })

  it.runIf(haveBrowser || requireBrowser)('shows each class in view: its peers, their versions and what they wait on', async () => {
    if (!haveBrowser) throw new Error(`UPGOSSIP_REQUIRE_BROWSER=1 but there is no Chromium at ${executablePath}: install Debian's "chromium" or set UPGOSSIP_CHROMIUM`)
    net = await TestNet.create()
    const { a, b } = await startStoreAndClient(net)
    const c2 = await net.releaseFiles({ 'upgossip.json': manifest({ app: 'client', version: '2.0.0', protocol: 1, calls: { store: 2 }, schedule: [{ rule: 'after', app: 'store', version: '>=2.0.0', fraction: 1 }] }), 'server.js': client(2) })
    expect((await runCli(['publish', c2.file, '--data', b.dataDir])).code).toBe(0)

    const { page, pageErrors } = await newPage()
    expect((await page.goto(`${b.control.url}/?token=${b.control.token}`))?.status()).toBe(200)
    // the client waits on the store class: its own class first, then the store
    await untilPage('both classes, the client waiting on after', async () => await classRows(page), rs =>
      JSON.stringify(rs) === JSON.stringify([
        { app: 'client', count: '1', versions: '1.0.0 × 1', waiting: '1 on after' },
        { app: 'store', count: '1', versions: '1.0.0 × 1', waiting: '0' }
      ]))

    const s2 = await net.releaseFiles({ 'upgossip.json': manifest({ app: 'store', version: '2.0.0', protocol: 2, simulation: { past: 'so/past.js' } }), 'server.js': STORE_2, 'so/past.js': STORE_PAST })
    expect((await runCli(['publish', s2.file, '--data', a.dataDir])).code).toBe(0)
    await untilPage('both classes on 2.0.0', async () => await classRows(page), rs =>
      rs.length === 2 && rs.every(r => r.versions === '2.0.0 × 1' && r.waiting === '0'), 60_000)
    expect(pageErrors).toEqual([])
  })
})
