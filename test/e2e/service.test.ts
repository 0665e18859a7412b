/**
 * Running the daemon as a service: the systemd unit `daemon --print-unit` writes (checked by
 * `systemd-analyze verify` where the tool is present; required with CI=true), and stderr
 * lines as a service manager keeps them — the full UTC time on each, or, when stderr is
 * the journal, the syslog priority and no time.
 */
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs/promises'
import { openSync, closeSync, fstatSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { kvVersion } from './support/kv-app.js'
import { BIN, TestNet, runCli, waitFor } from './support/testnet.js'

const analyze = spawnSync('systemd-analyze', ['--version']).status === 0
if (!analyze && process.env.CI === 'true') throw new Error('service.test.ts: systemd-analyze is missing, and CI=true requires it (Debian\'s "systemd" package)')

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

describe('as a service', () => {
  it('--print-unit writes a unit for these options: absolute paths, KillMode=mixed, a stop timeout above the daemon\'s, and systemd accepts it', async () => {
    net = await TestNet.create()
    const config = path.join(net.root, 'peer.json')
    await fs.writeFile(config, JSON.stringify({ stopTimeout: '2m' }))
    const data = path.join(net.root, 'srv data')
    const r = await runCli(['daemon', '--data', data, '--trust', path.relative(process.cwd(), net.trustFile), '--config', config, '--label', 'zone=a b', '--listen', '/ip4/0.0.0.0/tcp/4001', '--print-unit', '--user', 'upgossip'])
    expect(r.code, r.stderr).toBe(0)
    const unit = r.stdout
    const execStart = unit.split('\n').find(l => l.startsWith('ExecStart='))
    expect(execStart).toBe(`ExecStart=${process.execPath} ${BIN} daemon --data "${data}" --trust ${net.trustFile} --config ${config} --label "zone=a b" --listen /ip4/0.0.0.0/tcp/4001`)
    for (const line of ['User=upgossip', 'KillMode=mixed', 'TimeoutStopSec=150', 'UMask=0077', `ReadWritePaths="${data}"`, 'WantedBy=multi-user.target']) expect(unit.split('\n')).toContain(line)
    // nothing was started or written
    await expect(fs.stat(data)).rejects.toThrow(/ENOENT/)
    // --user alone is a usage error
    const alone = await runCli(['daemon', '--data', data, '--user', 'upgossip'])
    expect(alone.code).toBe(2)
    expect(alone.stderr).toContain('--user only goes with --print-unit')
    if (!analyze) return
    const file = path.join(net.root, 'upgossip-test.service')
    await fs.writeFile(file, unit)
    const verified = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
    expect(verified.status, verified.stderr).toBe(0)
    // systemd-analyze exits 0 on settings it ignores: it must have nothing to say
    expect(verified.stderr.split('\n').filter(l => l.includes(file))).toEqual([])
  })

  it('keeps its logs bounded: app.log moved aside past logMaxBytes, logFiles old ones kept, the newest lines in app.log', async () => {
    net = await TestNet.create({ logMaxBytes: 65536, logFiles: 2 })
    // a TCP app that writes 4000 lines (about 240 KB) before it listens
    const program = "import os, socket, time\nfor i in range(4000): print('line', i, 'x' * 50, flush=True)\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', int(os.environ['UPGOSSIP_PORT'])))\ns.listen()\ntime.sleep(600)\n"
    const noisy = await net.releaseFiles({ 'upgossip.json': JSON.stringify({ app: 'kv', version: '1.0.0', protocol: 1, run: { command: ['python3', 'noisy.py'], wire: 'tcp' } }), 'noisy.py': program })
    const a = await net.start('a', ['--install', noisy.file])
    await a.waitVersion('1.0.0')
    const log = path.join(a.dataDir, 'app.log')
    await waitFor('the last line in app.log', async () => (await fs.readFile(log, 'utf8')).includes('line 3999 '))
    for (const name of ['app.log', 'app.1.log', 'app.2.log']) expect((await fs.stat(path.join(a.dataDir, name))).size).toBeLessThanOrEqual(65536)
    await expect(fs.stat(path.join(a.dataDir, 'app.3.log'))).rejects.toThrow(/ENOENT/)
    // the lines kept are the newest, in order, across the files
    const kept = (await Promise.all(['app.2.log', 'app.1.log', 'app.log'].map(async n => await fs.readFile(path.join(a.dataDir, n), 'utf8')))).join('')
    const numbers = kept.split('\n').filter(l => l.startsWith('line ')).map(l => Number(l.split(' ')[1]))
    expect(numbers.at(-1)).toBe(3999)
    expect(numbers).toEqual(numbers.map((_, i) => (numbers[0] ?? 0) + i))
  })

  it('stderr lines carry the full UTC time; with stderr on the journal, the priority and no time', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    for (const journal of [false, true]) {
      const dir = path.join(net.root, journal ? 'journal' : 'plain')
      const log = path.join(net.root, `${journal ? 'journal' : 'plain'}.log`)
      const fd = openSync(log, 'w')
      const st = fstatSync(fd)
      const env = { ...process.env, ...(journal ? { JOURNAL_STREAM: `${st.dev}:${st.ino}` } : {}) }
      if (!journal) delete env.JOURNAL_STREAM
      const proc = spawn(process.execPath, [BIN, 'daemon', '--data', dir, '--trust', net.trustFile, '--install', v1.file, '--listen', '/ip4/127.0.0.1/tcp/0'], { env, stdio: ['ignore', 'ignore', fd] })
      closeSync(fd)
      try {
        await waitFor('the app to run', async () => (await fs.readFile(log, 'utf8')).includes('kv@1.0.0 is running'), 60_000)
      } finally {
        proc.kill('SIGTERM')
        await new Promise(resolve => proc.once('exit', resolve))
      }
      const lines = (await fs.readFile(log, 'utf8')).split('\n').filter(l => l !== '' && !l.startsWith('SIGTERM'))
      expect(lines.length).toBeGreaterThan(3)
      if (journal) {
        for (const line of lines) expect(line).toMatch(/^<[346]>(?!\d{4}-)/)
        expect(lines).toContain('<6>kv@1.0.0 is running')
      } else {
        for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /)
        expect(lines.some(l => / kv@1\.0\.0 is running$/.test(l))).toBe(true)
      }
    }
  })
})
