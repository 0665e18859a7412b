/** The systemd unit `daemon --print-unit` writes: arguments as systemd reads them, and the daemon's stop timeout. */
import { describe, expect, it } from 'vitest'
import { daemonArgs, serviceUnit, unitArg } from '../../src/cli/commands/daemon-unit.js'
import { stderrLine } from '../../src/daemon/event-log.js'

describe('the service unit', () => {
  it('quotes and escapes what systemd would read otherwise', () => {
    expect(unitArg('/var/lib/upgossip')).toBe('/var/lib/upgossip')
    expect(unitArg('zone=a b')).toBe('"zone=a b"')
    expect(unitArg('50%')).toBe('50%%')
    expect(unitArg('$HOME')).toBe('$$HOME')
    expect(unitArg('say "hi" \\ there')).toBe('"say \\"hi\\" \\\\ there"')
  })

  it('runs the daemon with absolute paths, its own options left out, and a stop timeout above the daemon\'s', () => {
    const args = daemonArgs({ trust: 'trust.json', label: ['zone=a', 'rack=1'], mdns: true, replaceTrust: false, printUnit: true, user: 'u', data: 'rel' }, '/var/lib/up')
    expect(args).toEqual(['daemon', '--data', '/var/lib/up', '--trust', `${process.cwd()}/trust.json`, '--label', 'zone=a', '--label', 'rack=1', '--mdns'])
    const unit = serviceUnit({ node: '/usr/bin/node', bin: '/opt/up/bin/upgossip.js', args, data: '/var/lib/up', stopTimeoutMs: 45_000 })
    expect(unit).toContain('TimeoutStopSec=75\n')
    expect(unit).not.toContain('User=')
    expect(unit).toContain(`ExecStart=/usr/bin/node /opt/up/bin/upgossip.js daemon --data /var/lib/up --trust ${process.cwd()}/trust.json --label zone=a --label rack=1 --mdns\n`)
  })

  it('stderr lines: the full UTC time and the level elsewhere; the priority, no time and one line under journald', () => {
    const time = '2026-12-06T16:41:30.123Z'
    expect(stderrLine(time, 'info', 'kv@1.0.0 is running', false)).toBe('2026-12-06T16:41:30Z kv@1.0.0 is running\n')
    expect(stderrLine(time, 'warn', 'slow', false)).toBe('2026-12-06T16:41:30Z WARN slow\n')
    expect(stderrLine(time, 'error', 'two\nlines', true)).toBe('<3>two lines\n')
    expect(stderrLine(time, 'info', 'ok', true)).toBe('<6>ok\n')
  })
})
