import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { DaemonConfigError, readDaemonConfig, resolveDaemonOptions } from '../../src/daemon/index.js'
import { didYouMean, editDistance, nearestName } from '../../src/nearest-name.js'
import { ManifestInvalidError, parseManifest } from '../../src/package/index.js'
import { TrustFileInvalidError, TrustPolicy } from '../../src/release/index.js'
import { PolicyInvalidError, readPolicy } from '../../src/schedule/index.js'
import { tempDir } from '../helpers.js'

const base = { app: 'kv', version: '2.0.0', main: 'server.js', protocol: 2 }
const RULES = ['immediate', 'at', 'window', 'jitter', 'rolling', 'canary', 'after', 'idle', 'approve', 'labels', 'halt-on-failures', 'module']

function messageOf (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return (err as Error).message
  }
  throw new Error('expected a refusal')
}

describe('the nearest valid name', () => {
  it('counts a swap of two neighbours as one edit', () => {
    expect(editDistance('rolling', 'rolling')).toBe(0)
    expect(editDistance('rollling', 'rolling')).toBe(1)
    expect(editDistance('rollnig', 'rolling')).toBe(1)
    expect(editDistance('treshold', 'threshold')).toBe(1)
    expect(editDistance('', 'abc')).toBe(3)
    expect(editDistance('kitten', 'sitting')).toBe(3)
  })

  it('suggests a close name, whatever its case, and nothing for a word that is not close to any', () => {
    expect(nearestName('rollling', RULES)).toBe('rolling')
    expect(nearestName('Rolling', RULES)).toBe('rolling')
    expect(nearestName('canery', RULES)).toBe('canary')
    expect(nearestName('halt-on-failure', RULES)).toBe('halt-on-failures')
    expect(nearestName('aproove', RULES)).toBe('approve')
    expect(nearestName('blue-green', RULES)).toBeUndefined()
    expect(nearestName('x', RULES)).toBeUndefined()
    // a short name allows one edit at most, and never all of it
    expect(nearestName('it', RULES)).toBe('at')
    expect(nearestName('zz', RULES)).toBeUndefined()
    expect(nearestName('windoww-x', RULES)).toBeUndefined()
    expect(nearestName('htp', ['http', 'tcp'])).toBe('http')
  })

  it('writes the suggestion only for a string that is not itself valid', () => {
    expect(didYouMean('rollling', RULES)).toBe('; did you mean "rolling"?')
    expect(didYouMean('rolling', RULES)).toBe('')
    expect(didYouMean(5, RULES)).toBe('')
  })
})

describe('schema errors echo the value and suggest the nearest valid one', () => {
  it('a mistyped schedule rule in a manifest', () => {
    const m = messageOf(() => parseManifest({ ...base, schedule: [{ rule: 'immediate' }, { rule: 'rollling', max: 1 }] }))
    expect(m).toBe('upgossip.json: rule "rollling" in "schedule[1]" is not a rule; did you mean "rolling"?')
    expect(() => parseManifest({ ...base, schedule: [{ rule: 'rollling', max: 1 }] })).toThrow(ManifestInvalidError)
  })

  it('a rule that is not close to any lists them all, and a missing one says so', () => {
    expect(messageOf(() => parseManifest({ ...base, schedule: [{ rule: 'blue-green' }] })))
      .toBe(`upgossip.json: rule "blue-green" in "schedule[0]" is not a rule: expected one of ${RULES.map(r => `"${r}"`).join(', ')}`)
    expect(messageOf(() => parseManifest({ ...base, schedule: [{ max: 1 }] }))).toMatch(/^upgossip\.json: "rule" is missing in "schedule\[0\]": expected one of "immediate", "at", /)
    expect(messageOf(() => parseManifest({ ...base, schedule: [{ rule: 7 }] }))).toMatch(/rule 7 in "schedule\[0\]" is not a rule: expected one of/)
  })

  it('an enum of the manifest (a process app\'s wire)', () => {
    const m = messageOf(() => parseManifest({ app: 'kv', version: '1.0.0', protocol: 1, run: { command: ['python3', 'server.py'], wire: 'htp' } }))
    expect(m).toBe('upgossip.json: "run.wire": "htp" is not one of "http", "tcp"; did you mean "http"?')
    const far = messageOf(() => parseManifest({ app: 'kv', version: '1.0.0', protocol: 1, run: { command: ['python3', 'server.py'], wire: 'grpc' } }))
    expect(far).toBe('upgossip.json: "run.wire": "grpc" is not one of "http", "tcp"')
  })

  it('an unknown key names it, where it is, and the key it is close to', () => {
    expect(messageOf(() => parseManifest({ ...base, schedule: [{ rule: 'jitter', mx: '1s' }] })))
      .toMatch(/unknown key "mx" in "schedule\[0\]"; did you mean "max"\?/)
    expect(messageOf(() => parseManifest({ ...base, helth: { readyWithin: '1s' } }))).toBe('upgossip.json: unknown key "helth"; did you mean "health"?')
    expect(messageOf(() => parseManifest({ ...base, colour: 'red' }))).toBe('upgossip.json: unknown key "colour"')
    expect(messageOf(() => TrustPolicy.parse({ apps: { kv: { publishers: ['z6MkhQLEV2f1qv9Qj7XaqKFkWzqdZzmPN99F2ooH2oNUM6Yt'], treshold: 1 } } })))
      .toMatch(/unknown key "treshold" in "apps\.kv"; did you mean "threshold"\?/)
    expect(() => TrustPolicy.parse({ apps: {}, aps: 1 })).toThrow(TrustFileInvalidError)
  })

  it('a very long bad value is echoed cut short', () => {
    const m = messageOf(() => parseManifest({ ...base, schedule: [{ rule: 'r'.repeat(5000) }] }))
    expect(m.length).toBeLessThan(400)
    expect(m).toContain('…')
  })

  it('a decoded value JSON cannot print (a bigint in an object without a prototype) is still echoed, not thrown', () => {
    const odd = Object.assign(Object.create(null) as Record<string, unknown>, { n: 2n ** 70n })
    expect(() => String(odd)).toThrow(TypeError)
    const m = messageOf(() => parseManifest({ app: 'kv', version: '1.0.0', protocol: 1, run: { command: ['python3', 'server.py'], wire: odd } }))
    expect(m).toBe('upgossip.json: "run.wire": {"n":"1180591620717411303424"} is not one of "http", "tcp"')
    expect(messageOf(() => parseManifest({ ...base, schedule: [{ rule: 2n ** 70n }] }))).toMatch(/rule "1180591620717411303424" in "schedule\[0\]" is not a rule/)
  })

  it('a policy file', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'policy.json')
    await fs.writeFile(file, JSON.stringify({ rules: [{ rule: 'rollling', max: 1 }] }))
    await expect(readPolicy(file)).rejects.toThrow(PolicyInvalidError)
    await expect(readPolicy(file)).rejects.toThrow(`policy ${file}: rule "rollling" in "rules[0]" is not a rule; did you mean "rolling"?`)
    await fs.writeFile(file, JSON.stringify({ rule: [] }))
    await expect(readPolicy(file)).rejects.toThrow(/unknown key "rule"; did you mean "rules"\?/)
  })

  it('a config file and the daemon\'s options', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'config.json')
    await fs.writeFile(file, JSON.stringify({ beatIntrval: '1s', trust: 't.json' }))
    await expect(readDaemonConfig(file)).rejects.toThrow(DaemonConfigError)
    await expect(readDaemonConfig(file)).rejects.toThrow(`config ${file}: unknown key "beatIntrval"; did you mean "beatInterval"?`)
    expect(() => resolveDaemonOptions({ polcy: 'p.json' } as never)).toThrow('daemon options: unknown key "polcy"; did you mean "policy"?')
  })
})
