/**
 * The web dashboard: one self-contained page (no external scripts or styles, no build
 * step), opened once with `?token=`. It shows the rollout as this peer sees it: every
 * peer with its version, state, download progress, the rule it waits on and the
 * failures it reported; per-release progress across the network; a chart of versions
 * over time (loaded once from `GET /timeline`); and failures. Its peer table is the
 * rollout view `upgossip rollout status` prints (progress on the target release, the rule
 * each peer waits on and why). Local controls: approve, hold and resume a release, roll
 * this peer back. It stays live through `GET /events` (`status`, `rollout` and `timeline` events).
 *
 * @example
 * ```ts
 * res.end(dashboardHtml())
 * ```
 */

const STYLE = String.raw`
:root{--fg:#1d2330;--muted:#6b7383;--line:#e6e8ee;--card:#fff;--bg:#f4f5f8;--ok:#2f9e63;--warn:#c98a12;--bad:#d64545;--info:#3a6fd8}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:baseline;gap:1rem;flex-wrap:wrap;padding:1rem 1.5rem;background:#1d2330;color:#fff}
header h1{font-size:1.25rem;margin:0;font-weight:650;letter-spacing:.01em}
header .sub{color:#b8bfcc;font-size:13px}
header code{color:#dfe3ea}
#live{margin-left:auto;font-size:12px;color:#b8bfcc}
#live::before{content:"";display:inline-block;width:8px;height:8px;border-radius:50%;background:#888;margin-right:.4rem;vertical-align:middle}
#live.on::before{background:#3fd07f}
#live.off::before{background:#e05a5a}
main{max-width:1280px;margin:0 auto;padding:1.2rem 1.5rem 2rem}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:1rem;margin-bottom:1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.9rem 1.1rem}
.card h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:0 0 .6rem;font-weight:600}
.big{font-size:1.7rem;font-weight:650;line-height:1.1}
.big small{font-size:.85rem;color:var(--muted);font-weight:400}
section.card{margin-bottom:1rem}
table{border-collapse:collapse;width:100%}
td,th{padding:.45rem .6rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle}
tr:last-child td{border-bottom:none}
th{font-weight:600;color:var(--muted);font-size:12px}
td.peer,td.download{white-space:nowrap}
code{font:12px ui-monospace,"SF Mono",Menlo,monospace;color:var(--muted)}
.chip{display:inline-flex;align-items:center;gap:.35rem;white-space:nowrap;font-weight:600}
.chip i{display:inline-block;width:10px;height:10px;border-radius:2px}
.chips{display:flex;flex-wrap:wrap;gap:.4rem 1rem}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:4px;font-size:12px;background:#eceef3;color:#3b4252;white-space:nowrap}
.badge.running,.badge.active,.badge.staged{background:#e2f4ea;color:#1e6b43}
.badge.upgrading,.badge.fetching,.badge.installing{background:#e3ecfc;color:#2d55a8}
.badge.waiting{background:#fdf1d8;color:#8a5d05}
.badge.rolling-back,.badge.rolled-back{background:#fde8d8;color:#9a4a10}
.badge.failed,.badge.refused,.badge.revoked{background:#fbe0e0;color:#a32626}
.badge.superseded{background:#eceef3;color:#6b7383}
.me{font-size:11px;color:#fff;background:var(--info);border-radius:3px;padding:0 .3rem;margin-left:.35rem}
.bar{display:inline-block;vertical-align:middle;width:90px;height:8px;background:#e9ebf0;border-radius:4px;overflow:hidden;margin-right:.45rem}
.bar>span{display:block;height:100%;background:var(--ok)}
.bar.run>span{background:var(--info)}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.why{color:var(--muted);font-size:12px;max-width:28rem}
.bad{color:var(--bad)}
.muted{color:var(--muted)}
.empty{color:var(--muted);padding:.4rem 0}
button{font:12px system-ui,sans-serif;margin-right:.3rem;padding:.15rem .55rem;cursor:pointer;border:1px solid #c9ced8;background:#fff;border-radius:4px}
button:hover{background:#f0f2f6}
#chart{display:block;width:100%;height:230px}
#chart text{font:11px system-ui,sans-serif;fill:var(--muted)}
#legend{margin-top:.4rem}
ul.fails{margin:0;padding-left:1.1rem} ul.fails li{margin:.25rem 0}
.frozen{border-left:4px solid #c33;background:#fff4f4;color:#822;font-weight:600}
@media (max-width:900px){.cards{grid-template-columns:repeat(2,1fr)}}
`

const BODY = String.raw`
<header><h1>upgossip</h1><span class="sub" id="me">connecting…</span><span id="live">connecting…</span></header>
<main>
<div id="frozen" class="card frozen" style="display:none"></div>
<div class="cards">
  <div class="card"><h2>Peers</h2><div class="big" id="peer-count">–</div></div>
  <div class="card"><h2>Versions now</h2><div class="chips" id="versions-now"></div></div>
  <div class="card"><h2>Switching</h2><div class="big" id="switching">–</div></div>
  <div class="card"><h2>Failures</h2><div class="big" id="failure-count">–</div></div>
</div>
<section class="card" id="classes-card" style="display:none"><h2>Classes</h2><table><thead><tr><th>app</th><th>peers</th><th>versions</th><th>switching</th><th>waiting</th><th>failures</th></tr></thead><tbody id="classes"></tbody></table></section>
<section class="card"><h2>Versions over time</h2><svg id="chart" role="img" aria-label="peers per version over time"></svg><div class="chips" id="legend"></div></section>
<section class="card"><h2>Releases</h2><table><thead><tr><th>version</th><th>state here</th><th>fetched here</th><th>held by</th><th>running on</th><th>signers</th><th>release id</th><th>operator</th></tr></thead><tbody id="releases"></tbody></table></section>
<section class="card"><h2>Peers <span class="muted" id="target"></span></h2><table><thead><tr><th>peer</th><th>version</th><th>state</th><th>target release</th><th>waiting on</th><th>failures</th><th>upgossip</th><th>seen</th></tr></thead><tbody id="peers"></tbody></table></section>
<section class="card"><h2>Failures</h2><div id="failures"></div></section>
</main>
`

const SCRIPT = String.raw`
'use strict'
const $ = id => document.getElementById(id)
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]))
const size = n => n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB'
const ago = t => { const s = Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000)); return s < 120 ? s + 's ago' : Math.round(s / 60) + 'm ago' }
const short = id => String(id).length > 20 ? String(id).slice(0, 8) + '…' + String(id).slice(-6) : String(id)
// reasons name releases by their full ids; a table cell needs them short
const shortIds = text => String(text ?? '').replace(/\b(baf[a-z2-7]{20,})\b/g, id => short(id))
const hhmmss = t => new Date(t).toTimeString().slice(0, 8)
const NONE = 'none'
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#e15759', '#76b7b2', '#edc948', '#9c755f', '#ff9da7', '#5d6d7e']
const FAILED_STATES = ['failed', 'refused', 'rolled-back', 'revoked']

// versions in semver order (numeric parts), "none" first; colours follow first sight, so they stay put
function versionOrder (a, b) {
  if (a === b) return 0
  if (a === NONE) return -1
  if (b === NONE) return 1
  const pa = a.split(/[.+-]/), pb = b.split(/[.+-]/)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '', y = pb[i] ?? ''
    const nx = Number(x), ny = Number(y)
    const d = Number.isNaN(nx) || Number.isNaN(ny) ? x.localeCompare(y) : nx - ny
    if (d !== 0) return d
  }
  return 0
}
const colours = new Map()
function colour (v) {
  if (v === NONE) return '#c3c8d2'
  if (!colours.has(v)) colours.set(v, PALETTE[colours.size % PALETTE.length])
  return colours.get(v)
}
const chip = v => '<span class="chip" data-version="' + esc(v) + '"><i style="background:' + colour(v) + '"></i>' + esc(v === NONE ? 'no version' : v) + '</span>'
const badge = s => '<span class="badge ' + esc(s) + '">' + esc(s) + '</span>'
const bar = (n, of, cls) => '<span class="bar ' + (cls ?? '') + '"><span style="width:' + (of === 0 ? 0 : Math.round(100 * n / of)) + '%"></span></span>'

let last = null
let rollout = null
let samples = []
let timelineLoaded = false
const early = []

function addSample (s) {
  if (samples.length > 0 && s.seq <= samples[samples.length - 1].seq) return
  samples.push(s)
  if (samples.length > 2000) samples.shift()
}

// everyone this peer knows of, itself first, in the shape of a network entry
function everyone (s) {
  const me = {
    peerId: s.peerId, app: s.app, version: s.version, state: s.state, labels: s.labels, self: true, connected: true,
    held: s.releases.filter(r => r.have > 0).map(r => ({ id: r.id, have: r.have, size: r.size })),
    failed: s.releases.filter(r => r.state === 'failed').map(r => r.id),
    waiting: (s.releases.filter(r => r.state === 'waiting' && r.waitingOn).map(r => ({ id: r.id, on: r.waitingOn, reason: r.reason })).pop()),
    upgrading: (s.releases.find(r => r.state === 'upgrading') ?? {}).id
  }
  // code-unit order, as the rollout view has it (peer ids are case-sensitive)
  const others = s.network.slice().sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
  return [me, ...others]
}
const sameApp = (s, p) => s.app == null || p.app === s.app

async function act (verb, id) {
  const res = await fetch('/' + verb + '/' + encodeURIComponent(id), { method: 'POST' })
  if (!res.ok) alert((await res.json()).error?.message ?? res.statusText)
}
function actions (r) {
  if (!['staged', 'waiting'].includes(r.state)) return ''
  const b = (verb, label) => '<button data-verb="' + verb + '" data-id="' + esc(r.id) + '">' + label + '</button>'
  return (r.waitingOn === 'approve' ? b('approve', 'approve') : '') + (r.waitingOn === 'hold' ? b('resume', 'resume') : b('hold', 'hold'))
}
document.addEventListener('click', e => {
  const t = e.target
  if (t.id === 'rollback') void rollBack()
  else if (t.dataset?.verb) void act(t.dataset.verb, t.dataset.id)
})

function render (s) {
  const peers = everyone(s)
  const mine = peers.filter(p => sameApp(s, p))
  const total = mine.length
  const versionOf = new Map(s.releases.map(r => [r.id, r.version]))
  const name = id => versionOf.has(id) ? versionOf.get(id) : short(id)

  $('me').innerHTML = esc(s.app ?? 'no app') + ' · peer <code title="' + esc(s.peerId) + '">' + esc(short(s.peerId)) + '</code> · network “' + esc(s.networkName) + '” · ' + s.connections + ' connection' + (s.connections === 1 ? '' : 's')

  // freeze detection: nothing heard from the network for too long
  const f = s.freshness
  $('frozen').style.display = f?.frozen ? '' : 'none'
  if (f?.frozen) $('frozen').textContent = 'This peer may be cut off from the network: ' + (f.reason ?? '') + '. It cannot learn of new releases or revocations.'

  // cards
  const now = {}
  for (const p of mine) { const v = p.version ?? NONE; now[v] = (now[v] ?? 0) + 1 }
  const nowVersions = Object.keys(now).sort(versionOrder)
  $('peer-count').innerHTML = total + ' <small>' + (peers.length > total ? '(+' + (peers.length - total) + ' other apps)' : 'in view') + '</small>'
  $('versions-now').innerHTML = nowVersions.map(v => chip(v) + ' <span class="num">× ' + now[v] + '</span>').join('') || '<span class="muted">none</span>'
  const switching = mine.filter(p => p.state === 'upgrading' || p.state === 'rolling-back').length
  const waiting = mine.filter(p => p.waiting != null).length
  $('switching').innerHTML = switching + ' <small>' + waiting + ' waiting</small>'
  const failingPeers = mine.filter(p => (p.failed ?? []).length > 0 || p.state === 'failed')
  const failedHere = s.releases.filter(r => FAILED_STATES.includes(r.state))
  $('failure-count').innerHTML = '<span class="' + (failingPeers.length + failedHere.length > 0 ? 'bad' : '') + '">' + failingPeers.length + '</span> <small>peer' + (failingPeers.length === 1 ? '' : 's') + ' reported</small>'

  renderClasses(s, peers)

  // per-release progress across the network
  $('releases').innerHTML = s.releases.map(r => {
    const here = r.size === 0 ? 100 : Math.floor(100 * r.have / r.size)
    const held = mine.filter(p => (p.held ?? []).some(h => h.id === r.id && h.have >= h.size)).length
    const running = mine.filter(p => p.version === r.version && p.app === r.app).length
    const state = badge(r.state) + (r.waitingOn ? ' <span class="muted">on</span> <b>' + esc(r.waitingOn) + '</b>' : '') + (r.reason ? '<div class="why">' + esc(shortIds(r.reason)) + '</div>' : '')
    return '<tr data-release="' + esc(r.id) + '" data-version="' + esc(r.version) + '"><td>' + chip(r.version) + '</td><td>' + state + '</td>' +
      '<td class="num">' + bar(r.have, r.size) + here + '% <span class="muted">' + size(r.size) + '</span></td>' +
      '<td class="num held-by">' + bar(held, total) + held + '/' + total + '</td>' +
      '<td class="num running-on">' + bar(running, total, 'run') + running + '/' + total + '</td>' +
      '<td class="num">' + r.signers + '</td><td><code title="' + esc(r.id) + '">' + esc(short(r.id)) + '</code></td><td>' + actions(r) + '</td></tr>'
  }).join('') || '<tr><td colspan="8" class="empty">no releases yet</td></tr>'

  renderPeers(s)

  // failures: this peer's releases with reasons, and the peers that reported failures
  const parts = []
  if (failedHere.length > 0) {
    parts.push('<h3 class="muted" style="font-size:13px;margin:.2rem 0">Releases on this peer</h3><ul class="fails">' + failedHere.map(r =>
      '<li data-failed-release="' + esc(r.id) + '">' + chip(r.version) + ' ' + badge(r.state) + ' <span class="why">' + esc(shortIds(r.reason ?? 'no reason recorded')) + '</span></li>').join('') + '</ul>')
  }
  if (failingPeers.length > 0) {
    parts.push('<h3 class="muted" style="font-size:13px;margin:.6rem 0 .2rem">Peers that reported failures</h3><ul class="fails">' + failingPeers.map(p =>
      '<li data-failed-peer="' + esc(p.peerId) + '"><code>' + esc(short(p.peerId)) + '</code>' + (p.self ? '<span class="me">this peer</span>' : '') + ' ' +
      ((p.failed ?? []).length > 0 ? 'failed ' + p.failed.map(id => '<span class="bad">' + esc(name(id)) + '</span>').join(', ') : '') +
      (p.state === 'failed' ? ' ' + badge('failed') + ' <span class="why">no version can run</span>' : '') +
      (p.version ? ' <span class="muted">· runs ' + esc(p.version) + '</span>' : '') + '</li>').join('') + '</ul>')
  }
  $('failures').innerHTML = parts.join('') || '<div class="empty">No failures reported.</div>'

  drawChart(s)
}

// the rollout view (GET /rollout, the 'rollout' event): every peer with its progress on the target release
function renderPeers (s) {
  if (rollout == null) return
  const v = rollout
  $('target').textContent = v.target == null ? '' : '· target ' + v.target
  // this peer can go back when a version it ran before is kept (the daemon refuses otherwise, and says why)
  const back = s.state === 'running' && s.releases.some(r => r.app === s.app && r.state === 'superseded')
  $('peers').innerHTML = v.peers.map(p => {
    const mine = p.app === v.app
    const target = !mine || p.size == null ? '<span class="muted">–</span>'
      : bar(p.have, p.size) + '<span class="num">' + (p.size === 0 ? 100 : Math.floor(100 * p.have / p.size)) + '%</span> <span class="muted">of ' + esc(v.target) + '</span>'
    const wait = p.waitingOn == null ? '<span class="muted">–</span>'
      : '<b>' + esc(p.waitingOn) + '</b>' + (p.waitingFor ? ' <span class="muted">for ' + esc(p.waitingFor) + '</span>' : '') + (p.reason ? '<div class="why">' + esc(shortIds(p.reason)) + '</div>' : '')
    const fails = (p.failed ?? []).map(f => '<span class="bad">' + esc(shortIds(f)) + '</span>').join(', ') || '<span class="muted">–</span>'
    const version = p.version == null ? chip(NONE) : mine ? chip(p.version) : esc(p.app) + ' ' + esc(p.version)
    const switchingTo = p.upgradingTo ? ' <span class="muted">→ ' + esc(p.upgradingTo) + '</span>' : ''
    const rollback = p.self && back ? ' <button id="rollback" title="go back to the previous version on this peer">roll back</button>' : ''
    const labels = Object.entries(p.labels ?? {}).map(([k, val]) => esc(k) + '=' + esc(val)).join(' ')
    const seen = p.self ? '<span class="muted">now</span>' : (p.connected ? 'connected · ' : '<span class="muted">not connected</span> · ') + ago(p.seen)
    return '<tr data-peer="' + esc(p.peerId) + '"><td class="peer"><code title="' + esc(p.peerId) + '">' + esc(short(p.peerId)) + '</code>' + (p.self ? '<span class="me">this peer</span>' : '') +
      (labels ? '<div class="why">' + labels + '</div>' : '') + '</td><td class="version">' + version + '</td><td class="state">' + badge(p.state) + switchingTo + rollback + '</td><td class="download">' + target +
      '</td><td class="waiting">' + wait + '</td><td class="failures">' + fails + '</td><td class="build">' + (p.build == null ? '<span class="muted">–</span>' : esc(p.build)) + '</td><td class="num">' + seen + '</td></tr>'
  }).join('')
}

async function rollBack () {
  if (!confirm('Roll this peer back to the version it ran before ' + (last?.version ?? '') + '?')) return
  const res = await fetch('/rollback', { method: 'POST' })
  if (!res.ok) alert((await res.json()).error?.message ?? res.statusText)
}

// one row per class (app) in view, this peer's first, when there are several
function renderClasses (s, peers) {
  const byApp = new Map(s.app == null ? [] : [[s.app, []]])
  for (const p of peers) { const app = p.app ?? NONE; if (!byApp.has(app)) byApp.set(app, []); byApp.get(app).push(p) }
  $('classes-card').style.display = byApp.size > 1 ? '' : 'none'
  if (byApp.size <= 1) return
  const apps = [...byApp.keys()].sort((a, b) => (b === s.app) - (a === s.app) || a.localeCompare(b))
  $('classes').innerHTML = apps.map(app => {
    const ps = byApp.get(app)
    const counts = {}
    for (const p of ps) { const v = p.version ?? NONE; counts[v] = (counts[v] ?? 0) + 1 }
    const versions = Object.keys(counts).sort(versionOrder).map(v => chip(v) + ' <span class="num">× ' + counts[v] + '</span>').join('')
    const switching = ps.filter(p => p.state === 'upgrading' || p.state === 'rolling-back').length
    const waiting = ps.filter(p => p.waiting != null)
    const on = [...new Set(waiting.map(p => p.waiting.on))].map(esc).join(', ')
    const failing = ps.filter(p => (p.failed ?? []).length > 0 || p.state === 'failed').length
    return '<tr data-app="' + esc(app) + '"><td><b>' + esc(app) + '</b>' + (app === s.app ? '<span class="me">this peer\'s</span>' : '') + '</td><td class="num count">' + ps.length + '</td>' +
      '<td class="versions">' + versions + '</td><td class="num">' + switching + '</td><td class="waiting">' + waiting.length + (on ? ' <span class="muted">on</span> ' + on : '') + '</td>' +
      '<td class="num"><span class="' + (failing > 0 ? 'bad' : '') + '">' + failing + '</span></td></tr>'
  }).join('')
}

function drawChart (s) {
  const svg = $('chart')
  const W = Math.max(320, svg.clientWidth || 900), H = Math.max(160, svg.clientHeight || 230)
  const pad = { l: 34, r: 12, t: 10, b: 24 }
  const iw = W - pad.l - pad.r, ih = H - pad.t - pad.b
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H)
  if (samples.length === 0) { svg.innerHTML = '<text x="' + (W / 2) + '" y="' + (H / 2) + '" text-anchor="middle">no samples yet</text>'; $('legend').innerHTML = ''; return }
  const t1 = Math.max(Date.now(), Date.parse(samples[samples.length - 1].time))
  const t0 = Math.min(Date.parse(samples[0].time), t1 - 10000)
  const versions = [...new Set(samples.flatMap(x => Object.keys(x.versions)))].sort(versionOrder)
  const ymax = Math.max(1, ...samples.map(x => Object.values(x.versions).reduce((a, b) => a + b, 0)))
  const X = t => pad.l + iw * (t - t0) / (t1 - t0)
  const Y = n => pad.t + ih - ih * n / ymax
  let out = ''
  // grid: one line per peer while few, five otherwise
  const step = ymax <= 10 ? 1 : Math.ceil(ymax / 5)
  for (let n = 0; n <= ymax; n += step) {
    out += '<line x1="' + pad.l + '" x2="' + (W - pad.r) + '" y1="' + Y(n) + '" y2="' + Y(n) + '" stroke="#e6e8ee"/>'
    out += '<text x="' + (pad.l - 6) + '" y="' + (Y(n) + 4) + '" text-anchor="end">' + n + '</text>'
  }
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (t1 - t0) * i / 4
    out += '<text x="' + X(t) + '" y="' + (H - 6) + '" text-anchor="' + (i === 0 ? 'start' : i === 4 ? 'end' : 'middle') + '">' + hhmmss(t) + '</text>'
  }
  // stacked step areas, oldest version at the bottom
  const base = samples.map(() => 0)
  for (const v of versions) {
    const top = samples.map((x, i) => base[i] + (x.versions[v] ?? 0))
    if (top.every((n, i) => n === base[i])) continue
    let up = '', down = ''
    samples.forEach((x, i) => {
      const xa = X(Date.parse(x.time)), xb = i + 1 < samples.length ? X(Date.parse(samples[i + 1].time)) : X(t1)
      up += (i === 0 ? 'M' : 'L') + xa.toFixed(1) + ',' + Y(top[i]).toFixed(1) + 'L' + xb.toFixed(1) + ',' + Y(top[i]).toFixed(1)
      down = 'L' + xb.toFixed(1) + ',' + Y(base[i]).toFixed(1) + 'L' + xa.toFixed(1) + ',' + Y(base[i]).toFixed(1) + down
    })
    out += '<path data-version="' + esc(v) + '" d="' + up + down + 'Z" fill="' + colour(v) + '" fill-opacity="0.9"><title>' + esc(v) + '</title></path>'
    samples.forEach((x, i) => { base[i] = top[i] })
  }
  out += '<line x1="' + pad.l + '" x2="' + pad.l + '" y1="' + pad.t + '" y2="' + (pad.t + ih) + '" stroke="#c9ced8"/>'
  svg.innerHTML = out
  const nowCounts = samples[samples.length - 1].versions
  $('legend').innerHTML = versions.map(v => chip(v) + ' <span class="num muted">' + (nowCounts[v] ?? 0) + ' now</span>').join('')
}

function connect () {
  const events = new EventSource('/events')
  events.addEventListener('status', e => {
    last = JSON.parse(e.data)
    render(last)
    $('live').className = 'on'
    $('live').textContent = 'live · ' + new Date().toLocaleTimeString()
  })
  events.addEventListener('rollout', e => {
    rollout = JSON.parse(e.data)
    if (last) renderPeers(last)
  })
  events.addEventListener('timeline', e => {
    const sample = JSON.parse(e.data)
    if (timelineLoaded) { addSample(sample); if (last) drawChart(last) } else early.push(sample)
  })
  events.onerror = () => { $('live').className = 'off'; $('live').textContent = 'disconnected; retrying…' }
}

// the history first (so a reload keeps the chart), then whatever /events sent meanwhile
connect()
fetch('/timeline').then(r => r.ok ? r.json() : { samples: [] }).then(t => {
  for (const s of t.samples) addSample(s)
}).catch(() => {}).finally(() => {
  timelineLoaded = true
  for (const s of early.splice(0)) addSample(s)
  if (last) drawChart(last)
})
setInterval(() => { if (last) render(last) }, 2000)
window.addEventListener('resize', () => { if (last) drawChart(last) })
`

/** The dashboard's HTML (self-contained: no external scripts or styles). */
export function dashboardHtml (): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>upgossip</title>
<style>${STYLE}</style></head><body>${BODY}<script>${SCRIPT}</script></body></html>
`
}
