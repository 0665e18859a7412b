import { describe, expect, it } from 'vitest'
import { ManifestInvalidError, manifestFiles, parseManifest, readManifestBytes } from '../../src/package/index.js'

const base = { app: 'kv', version: '2.0.0', main: 'server.js', protocol: 2 }

describe('manifest schema', () => {
  it('fills the defaults of docs/manifest.md', () => {
    const m = parseManifest(base)
    expect(m.schedule).toEqual([{ rule: 'immediate' }])
    expect(m.health).toEqual({ readyWithin: '30s', stableFor: '5s' })
    expect(m.upgrades).toBeUndefined()
    expect(m.transform).toBeUndefined()
  })

  it('accepts the full example of docs/manifest.md', () => {
    const m = parseManifest({
      ...base,
      upgrades: '^1.0.0',
      transform: { up: 'migrate/up.js', down: 'migrate/down.js' },
      simulation: { past: 'so/past.js', future: 'so/future.js' },
      schedule: [{ rule: 'jitter', max: '20s' }, { rule: 'rolling', maxFraction: 0.2 }],
      health: { readyWithin: '15s', stableFor: '10s' }
    })
    expect(m.schedule).toHaveLength(2)
  })

  it('accepts every schedule rule of the table', () => {
    const rules = [
      { rule: 'immediate' },
      { rule: 'at', time: '2026-12-01T02:00:00Z' },
      { rule: 'window', daily: '02:00-04:00', tz: 'UTC' },
      { rule: 'jitter', max: '30s' },
      { rule: 'rolling', max: 2 },
      { rule: 'rolling', maxFraction: 0.2 },
      { rule: 'canary', fraction: 0.1, soak: '60s' },
      { rule: 'canary', labels: { zone: 'a' }, soak: '60s' },
      { rule: 'after', fraction: 0.5 },
      { rule: 'idle', maxInFlight: 0, for: '5s' },
      { rule: 'approve' },
      { rule: 'labels', match: { zone: 'a' } },
      { rule: 'halt-on-failures', max: 1 },
      { rule: 'module', path: 'schedule.js' }
    ]
    expect(parseManifest({ ...base, schedule: rules }).schedule).toHaveLength(rules.length)
  })

  const refusals: Array<[string, unknown, RegExp]> = [
    ['an unknown key, named', { ...base, colour: 'red' }, /unknown key "colour"/],
    ['an unknown key inside a rule, with its place', { ...base, schedule: [{ rule: 'jitter', max: '1s', min: '0s' }] }, /unknown key "min" in "schedule\[0\]"/],
    ['a missing required field', { app: 'kv', version: '1.0.0', main: 'server.js' }, /"protocol"/],
    ['a bad version', { ...base, version: '1.x' }, /"version": expected a semver version/],
    ['a version with a v prefix', { ...base, version: 'v1.0.0' }, /"version"/],
    ['a wrong type', { ...base, protocol: '2' }, /"protocol"/],
    ['a zero protocol', { ...base, protocol: 0 }, /"protocol"/],
    ['a bad range', { ...base, upgrades: 'latest-ish' }, /"upgrades"/],
    ['a path leaving the package', { ...base, main: '../server.js' }, /"main".*"\.\."/],
    ['an absolute path', { ...base, transform: { up: '/etc/passwd' } }, /"transform.up".*absolute/],
    ['a bad duration', { ...base, health: { readyWithin: 'soon' } }, /"health.readyWithin"/],
    ['an unknown rule', { ...base, schedule: [{ rule: 'yolo' }] }, /schedule\[0\]/],
    ['a rolling rule with both limits', { ...base, schedule: [{ rule: 'rolling', max: 1, maxFraction: 0.5 }] }, /exactly one/],
    ['a fraction above 1', { ...base, schedule: [{ rule: 'after', fraction: 1.5 }] }, /schedule\[0\]\.fraction/],
    ['an after rule with an invalid range', { ...base, schedule: [{ rule: 'after', app: 'store', version: 'two or later', fraction: 1 }] }, /semver range/],
    ['an after rule naming an app without a range', { ...base, schedule: [{ rule: 'after', app: 'store', fraction: 1 }] }, /both "app" and "version"/],
    ['an after rule naming a badly named app', { ...base, schedule: [{ rule: 'after', app: 'Store!', version: '>=2.0.0', fraction: 1 }] }, /app name/],
    ['a calls entry with a protocol out of range', { ...base, calls: { store: 0 } }, /"calls.store"/],
    ['a calls entry that is not an app name', { ...base, calls: { 'Store!': 1 } }, /calls/],
    ['a calls entry naming its own app', { ...base, calls: { [base.app]: 1 } }, /"calls" names other apps/],
    ['a bad window', { ...base, schedule: [{ rule: 'window', daily: '25:00-26:00' }] }, /daily window/],
    ['a bad time zone', { ...base, schedule: [{ rule: 'window', daily: '02:00-04:00', tz: 'Mars/Olympus' }] }, /time zone/],
    ['an app name with capitals', { ...base, app: 'KV' }, /"app"/],
    ['not an object', 'kv', /upgossip.json/]
  ]
  for (const [what, value, message] of refusals) {
    it(`refuses ${what}`, () => {
      expect(() => parseManifest(value)).toThrow(ManifestInvalidError)
      expect(() => parseManifest(value)).toThrow(message)
    })
  }

  it('refuses bytes that are not UTF-8 JSON, and oversized manifests', () => {
    expect(() => readManifestBytes(new Uint8Array([0xff, 0xfe]))).toThrow(ManifestInvalidError)
    expect(() => readManifestBytes(new TextEncoder().encode('{"app":'))).toThrow(/not valid UTF-8 JSON/)
    expect(() => readManifestBytes(new Uint8Array(70_000))).toThrow(/limit/)
  })
})

describe('transform entries (docs/manifest.md, "Transforms")', () => {
  it('accepts a module path or a command, for up and down alike', () => {
    const m = parseManifest({ ...base, transform: { up: { command: ['python3', 'up.py'] }, down: 'migrate/down.js' } })
    expect(m.transform).toEqual({ up: { command: ['python3', 'up.py'] }, down: 'migrate/down.js' })
    const both = parseManifest({ ...base, transform: { up: { command: ['./migrate/up.sh', '--fast'] }, down: { command: ['/usr/bin/env', 'python3', 'down.py'] } } })
    expect(both.transform?.down).toEqual({ command: ['/usr/bin/env', 'python3', 'down.py'] })
    const longest = Array.from({ length: 64 }, () => 'x'.repeat(4096))
    expect(parseManifest({ ...base, transform: { up: { command: longest } } }).transform?.up).toEqual({ command: longest })
  })

  it('names a "./" program as a package file (so a missing one is refused), a program on PATH not', () => {
    const m = parseManifest({ ...base, transform: { up: { command: ['./migrate/up.sh'] }, down: { command: ['python3', 'migrate/down.py'] } } })
    expect(manifestFiles(m).filter(f => f.field.startsWith('transform'))).toEqual([
      { field: 'transform.up.command[0]', path: 'migrate/up.sh', program: true }
    ])
    const mod = parseManifest({ ...base, transform: { up: 'migrate/up.js' } })
    expect(manifestFiles(mod).filter(f => f.field.startsWith('transform'))).toEqual([{ field: 'transform.up', path: 'migrate/up.js' }])
  })

  const refusals: Array<[string, unknown, RegExp]> = [
    ['an empty argv', { command: [] }, /"transform.up.command": expected a command/],
    ['an empty argument', { command: ['python3', ''] }, /"transform.up.command\[1\]"/],
    ['more than 64 arguments', { command: Array.from({ length: 65 }, () => 'a') }, /"transform.up.command": .*<=64/],
    ['an argument over 4096 characters', { command: ['python3', 'x'.repeat(4097)] }, /"transform.up.command\[1\]": .*<=4096/],
    ['a NUL byte in an argument', { command: ['python3', 'up\0.py'] }, /NUL byte/],
    ['a "./" program outside the package', { command: ['./../up.sh'] }, /"transform.up.command\[0\]": .*must be a file inside the package.*"\.\."/],
    ['a relative program without "./"', { command: ['migrate/up.sh'] }, /"transform.up.command\[0\]": write "\.\/migrate\/up\.sh"/],
    ['an unknown key beside command', { command: ['python3', 'up.py'], shell: true }, /unknown key "shell" in "transform.up"/],
    ['a command that is a string', { command: 'python3 up.py' }, /"transform.up.command"/],
    ['a number', 7, /"transform.up": expected a package path .* or \{ "command"/]
  ]
  for (const [what, up, message] of refusals) {
    it(`refuses ${what}`, () => {
      expect(() => parseManifest({ ...base, transform: { up } })).toThrow(ManifestInvalidError)
      expect(() => parseManifest({ ...base, transform: { up } })).toThrow(message)
    })
  }
})
