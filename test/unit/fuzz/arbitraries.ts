/**
 * Structured arbitraries for upgossip's own formats: values in the shape of a record,
 * a manifest, a revocation, a trust file, with each field sometimes valid, sometimes of
 * another type or size, sometimes left out — the cases that get past the first check.
 */
import fc from 'fast-check'
import { cborValueArb, cidArb, fieldArb, nastyStringArb, withoutUndefined } from './support.js'

/** Semver versions, with prereleases, and strings that are almost versions. */
export const semverArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.nat(20), fc.nat(20), fc.nat(20)).map(([a, b, c]) => `${a}.${b}.${c}`) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.constantFrom('rc.1', 'alpha', 'beta.2')).map(([a, b, c, p]) => `${a}.${b}.${c}-${p}`) },
  { weight: 1, arbitrary: fc.constantFrom('1.0', 'v1.0.0', '01.0.0', '1.0.0 ', '9007199254740992.0.0', '') }
)

/** App names, valid and not. */
export const appNameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('kv', 'demo', 'a.b-c_d') },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,70}$/) },
  { weight: 1, arbitrary: nastyStringArb }
)

/** ISO-8601 times, and strings that are almost times. */
export const isoTimeArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map(d => d.toISOString()) },
  { weight: 1, arbitrary: fc.constantFrom('2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-01-01T00:00:00+25:00', '2026-01-01', '+275760-09-13T00:00:00.000Z', 'now', '') }
)

/** Durations as manifests write them, and strings that are not. */
export const durationArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.nat(1000), fc.constantFrom('ms', 's', 'm', 'h', 'd')).map(([n, u]) => `${n}${u}`) },
  { weight: 1, arbitrary: fc.constantFrom('1e3s', '-5s', '5', 's', '9'.repeat(400) + 'd', '1.5.5s', '5 s') }
)

/** Paths inside a package, and ones that try to leave it. */
export const packagePathArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('server.js', 'lib/a.js', 'migrate/up.js', 'so/past.js') },
  { weight: 1, arbitrary: nastyStringArb }
)

const labelsArb = fc.dictionary(fc.oneof(fc.constantFrom('zone', 'role'), nastyStringArb), fc.oneof(fc.constantFrom('a', 'b'), nastyStringArb, cborValueArb), { maxKeys: 3 })

const RULES = ['immediate', 'at', 'window', 'jitter', 'rolling', 'canary', 'after', 'idle', 'approve', 'labels', 'halt-on-failures', 'module', 'nope'] as const

/** Schedule rules: every rule name with any subset of every rule's fields. */
export const ruleArb: fc.Arbitrary<unknown> = fc.record({
  rule: fieldArb(fc.constantFrom(...RULES), 8),
  time: isoTimeArb,
  daily: fc.oneof(fc.constantFrom('02:00-04:00', '23:59-00:00', '24:00-01:00', '2:00-4:00'), nastyStringArb),
  tz: fc.oneof(fc.constantFrom('UTC', 'Europe/Paris', 'Mars/Olympus', 'utc'), nastyStringArb),
  max: fc.oneof(fc.integer({ min: -2, max: 10 }), durationArb, cborValueArb),
  maxFraction: fc.oneof(fc.double({ min: -1, max: 2, noNaN: true }), cborValueArb),
  fraction: fc.oneof(fc.double({ min: -1, max: 2, noNaN: true }), cborValueArb),
  soak: durationArb,
  labels: labelsArb,
  match: labelsArb,
  maxInFlight: fc.oneof(fc.integer({ min: -2, max: 5 }), fc.constant(-0), cborValueArb),
  for: durationArb,
  path: packagePathArb,
  timeLimit: durationArb
}, { requiredKeys: [] }).map(withoutUndefined)

/** Manifests: every field sometimes valid, sometimes not, sometimes missing; sometimes an unknown key. */
export function manifestArb (app: fc.Arbitrary<string> = appNameArb, version: fc.Arbitrary<string> = semverArb): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({
    app: fieldArb(app, 8),
    version: fieldArb(version, 8),
    main: fieldArb(packagePathArb, 8),
    protocol: fieldArb(fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constantFrom(0, -1, 1.5, 1_000_001, 2 ** 53)), 8),
    upgrades: fieldArb(fc.constantFrom('^1.0.0', '>=1.0.0 <2.0.0', '*', 'not a range', '1.x'), 1),
    transform: fieldArb(fc.record({ up: packagePathArb, down: packagePathArb }, { requiredKeys: [] }), 1),
    simulation: fieldArb(fc.record({ past: packagePathArb, future: packagePathArb }, { requiredKeys: [] }), 1),
    schedule: fieldArb(fc.array(ruleArb, { maxLength: 4 }), 1),
    health: fieldArb(fc.record({ readyWithin: durationArb, stableFor: durationArb }, { requiredKeys: [] }), 1),
    extra: fc.option(fc.tuple(nastyStringArb, cborValueArb), { freq: 10 })
  }).map(({ extra, ...m }) => withoutUndefined(extra == null ? m : { ...m, [extra[0]]: extra[1] }))
}

/** A record's fields: usually consistent (so the deeper checks run), each sometimes broken. */
export const recordArb: fc.Arbitrary<Record<string, unknown>> = fc.tuple(appNameArb, semverArb).chain(([app, version]) => fc.record({
  app: fieldArb(fc.constant(app), 8),
  version: fieldArb(fc.constant(version), 8),
  previous: fieldArb(fc.option(cidArb), 8),
  package: fieldArb(cidArb, 8),
  size: fieldArb(fc.oneof(fc.nat(), fc.constantFrom(-1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER)), 8),
  manifest: fieldArb(manifestArb(fc.constant(app), fc.constant(version)), 8),
  issued: fieldArb(isoTimeArb, 8),
  expires: fieldArb(isoTimeArb, 8),
  extra: fc.option(fc.tuple(nastyStringArb, cborValueArb), { freq: 10 })
}).map(({ extra, ...r }) => withoutUndefined(extra == null ? r : { ...r, [extra[0]]: extra[1] })))

/** Signatures: well-formed, of the wrong size, by unknown keys, too many. */
export function signaturesArb (keys: string[]): fc.Arbitrary<unknown> {
  const signature = fc.record({
    key: fieldArb(fc.oneof(fc.constantFrom(...keys), nastyStringArb), 6),
    sig: fieldArb(fc.oneof(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ maxLength: 100 })), 6)
  }).map(withoutUndefined)
  return fieldArb(fc.oneof({ weight: 8, arbitrary: fc.array(signature, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.array(signature, { minLength: 65, maxLength: 70 }) }), 8)
}
