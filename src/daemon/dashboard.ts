/**
 * The web dashboard: one page, opened once with `?token=`, that shows this peer, the
 * releases with their fetch progress, and the network, live from `GET /events`.
 */

/** The dashboard's HTML (self-contained: no external scripts or styles). */
export function dashboardHtml (): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>upgossip</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 .2rem} h2{font-size:1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;width:100%;background:#fff} td,th{padding:.3rem .6rem;border-bottom:1px solid #eee;text-align:left}
th{font-weight:600;color:#555} code{font-size:12px;color:#555}
.bar{background:#eee;border-radius:3px;height:10px;width:160px;display:inline-block;vertical-align:middle}
.bar>span{display:block;height:10px;border-radius:3px;background:#3a7}
.state{padding:.05rem .4rem;border-radius:3px;background:#eef} .refused,.failed,.revoked{background:#fdd} .staged,.active{background:#dfd} .fetching{background:#ffd}
#live{color:#999;font-size:12px}
button{font:12px system-ui,sans-serif;margin-right:.3rem;padding:.1rem .5rem;cursor:pointer}
.why{color:#666;font-size:12px}
</style></head><body>
<h1>upgossip <span id="peer"></span></h1><div id="me"></div><div id="live">connecting…</div>
<h2>Releases</h2><table><thead><tr><th>app</th><th>version</th><th>state</th><th>progress</th><th>signers</th><th>release id</th><th>operator</th></tr></thead><tbody id="releases"></tbody></table>
<h2>Network</h2><table><thead><tr><th>peer</th><th>app</th><th>version</th><th>state</th><th>connected</th><th>last seen</th></tr></thead><tbody id="network"></tbody></table>
<script>
const esc = s => String(s ?? '').replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))
const size = n => n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB'
const ago = t => Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000)) + 's ago'
const short = id => id.length > 20 ? id.slice(0, 10) + '…' + id.slice(-6) : id
async function act (verb, id) {
  const res = await fetch('/' + verb + '/' + encodeURIComponent(id), { method: 'POST' })
  if (!res.ok) alert((await res.json()).error?.message ?? res.statusText)
}
function actions (r) {
  if (!['staged', 'waiting'].includes(r.state)) return ''
  const b = (verb, label) => '<button data-verb="' + verb + '" data-id="' + esc(r.id) + '">' + label + '</button>'
  return (r.waitingOn === 'approve' ? b('approve', 'approve') : '') + (r.waitingOn === 'hold' ? b('resume', 'resume') : b('hold', 'hold'))
}
document.addEventListener('click', e => { const t = e.target; if (t.dataset?.verb) void act(t.dataset.verb, t.dataset.id) })
function render (s) {
  document.getElementById('peer').innerHTML = '<code>' + esc(s.peerId) + '</code>'
  document.getElementById('me').textContent = (s.app ?? 'no app') + ' ' + (s.version ?? '') + ' · ' + s.state + ' · network ' + s.networkName + ' · ' + s.connections + ' connections'
  document.getElementById('releases').innerHTML = s.releases.map(r => {
    const pct = r.size === 0 ? 100 : Math.floor(100 * r.have / r.size)
    const state = '<span class="state ' + esc(r.state) + '">' + esc(r.state) + (r.waitingOn ? ' on ' + esc(r.waitingOn) : '') + '</span>'
    return '<tr><td>' + esc(r.app) + '</td><td>' + esc(r.version) + '</td><td>' + state + (r.reason ? '<div class="why">' + esc(r.reason) + '</div>' : '') +
      '</td><td><span class="bar"><span style="width:' + pct + '%"></span></span> ' + pct + '% ' + size(r.have) + ' / ' + size(r.size) + '</td><td>' + r.signers +
      '</td><td><code title="' + esc(r.id) + '">' + esc(short(r.id)) + '</code></td><td>' + actions(r) + '</td></tr>'
  }).join('') || '<tr><td colspan="7">none yet</td></tr>'
  document.getElementById('network').innerHTML = s.network.map(p => '<tr><td><code title="' + esc(p.peerId) + '">' + esc(short(p.peerId)) + '</code></td><td>' + esc(p.app) + '</td><td>' + esc(p.version) +
    '</td><td>' + esc(p.state) + '</td><td>' + (p.connected ? 'yes' : 'no') + '</td><td>' + ago(p.seen) + '</td></tr>').join('') || '<tr><td colspan="6">no other peers heard yet</td></tr>'
}
const events = new EventSource('/events')
events.addEventListener('status', e => { render(JSON.parse(e.data)); document.getElementById('live').textContent = 'live · updated ' + new Date().toLocaleTimeString() })
events.onerror = () => { document.getElementById('live').textContent = 'disconnected; retrying…' }
</script></body></html>
`
}
