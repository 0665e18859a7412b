/**
 * Structured arbitraries for upgossip's own formats: values in the shape of a record,
 * a manifest, a revocation, a trust file, with each field sometimes valid, sometimes of
 * another type or size, sometimes left out — the cases that get past the first check.
 */
import fc from 'fast-check'
import { cborValueArb, cidArb, fieldArb, nastyStringArb, optionalFieldArb, rarely, withoutUndefined } from './support.js'

/** Semver versions, with prereleases, and strings that are almost versions. */
export const semverArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.tuple(fc.nat(20), fc.nat(20), fc.nat(20)).map(([a, b, c]) => `${a}.${b}.${c}`) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.constantFrom('rc.1', 'alpha', 'beta.2')).map(([a, b, c, p]) => `${a}.${b}.${c}-${p}`) },
  { weight: 1, arbitrary: fc.constantFrom('1.0', 'v1.0.0', '01.0.0', '1.0.0 ', '9007199254740992.0.0', '') }
)

/** App names, valid and not. */
export const appNameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('kv', 'demo', 'a.b-c_d') },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,70}$/) },
  { weight: 1, arbitrary: nastyStringArb }
)

/** ISO-8601 times, and strings that are almost times. */
export const isoTimeArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map(d => d.toISOString()) },
  { weight: 1, arbitrary: fc.constantFrom('2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-01-01T00:00:00+25:00', '2026-01-01', '+275760-09-13T00:00:00.000Z', 'now', '') }
)

/** Durations as manifests write them, and strings that are not. */
export const durationArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.tuple(fc.nat(1000), fc.constantFrom('ms', 's', 'm', 'h', 'd')).map(([n, u]) => `${n}${u}`) },
  { weight: 1, arbitrary: fc.constantFrom('1e3s', '-5s', '5', 's', '9'.repeat(400) + 'd', '1.5.5s', '5 s') }
)

/** Paths inside a package, and ones that try to leave it. */
export const packagePathArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('server.js', 'lib/a.js', 'migrate/up.js', 'so/past.js') },
  { weight: 1, arbitrary: nastyStringArb }
)

const labelsArb = fc.dictionary(fc.oneof(fc.constantFrom('zone', 'role'), nastyStringArb), fc.oneof(fc.constantFrom('a', 'b'), nastyStringArb, cborValueArb), { maxKeys: 3 })

const RULES = ['immediate', 'at', 'window', 'jitter', 'rolling', 'canary', 'after', 'idle', 'approve', 'labels', 'halt-on-failures', 'module', 'nope'] as const

const fractionArb = fc.double({ min: 0.01, max: 1, noNaN: true })
const validDurationArb = fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.constantFrom('ms', 's', 'm', 'h')).map(([n, u]) => `${n}${u}`)

/** One valid rule of each kind. */
const validRuleArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant({ rule: 'immediate' }),
  fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }).map(d => ({ rule: 'at', time: d.toISOString() })),
  fc.tuple(fc.constantFrom('02:00-04:00', '23:00-01:00'), fc.constantFrom('UTC', 'Europe/Paris')).map(([daily, tz]) => ({ rule: 'window', daily, tz })),
  validDurationArb.map(max => ({ rule: 'jitter', max })),
  fc.oneof(fc.integer({ min: 1, max: 5 }).map(max => ({ rule: 'rolling', max })), fractionArb.map(maxFraction => ({ rule: 'rolling', maxFraction }))),
  fc.tuple(fractionArb, validDurationArb).map(([fraction, soak]) => ({ rule: 'canary', fraction, soak })),
  fractionArb.map(fraction => ({ rule: 'after', fraction })),
  fc.tuple(fc.nat(3), validDurationArb).map(([maxInFlight, f]) => ({ rule: 'idle', maxInFlight, for: f })),
  fc.constant({ rule: 'approve' }),
  fc.constant({ rule: 'labels', match: { zone: 'a' } }),
  fc.integer({ min: 1, max: 3 }).map(max => ({ rule: 'halt-on-failures', max })),
  fc.constant({ rule: 'module', path: 'schedule.js' })
)

/** Any rule name with any subset of every rule's fields. */
const mixedRuleArb: fc.Arbitrary<unknown> = fc.record({
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

/** Schedule rules: mostly valid ones of every kind, sometimes any rule name with any fields. */
export const ruleArb: fc.Arbitrary<unknown> = fc.oneof({ weight: 6, arbitrary: validRuleArb }, { weight: 1, arbitrary: mixedRuleArb })

/** Manifests: every field sometimes valid, sometimes not, sometimes missing; sometimes an unknown key. */
export function manifestArb (app: fc.Arbitrary<string> = appNameArb, version: fc.Arbitrary<string> = semverArb): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({
    app: fieldArb(app, 40),
    version: fieldArb(version, 40),
    main: fieldArb(packagePathArb, 40),
    protocol: fieldArb(fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 1, max: 5 }) }, { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, 1_000_001, 2 ** 53) }), 40),
    upgrades: optionalFieldArb(fc.constantFrom('^1.0.0', '>=1.0.0 <2.0.0', '*', 'not a range', '1.x')),
    transform: optionalFieldArb(fc.record({ up: packagePathArb, down: packagePathArb }, { requiredKeys: [] })),
    simulation: optionalFieldArb(fc.record({ past: packagePathArb, future: packagePathArb }, { requiredKeys: [] })),
    schedule: optionalFieldArb(fc.array(ruleArb, { maxLength: 4 })),
    health: optionalFieldArb(fc.record({ readyWithin: durationArb, stableFor: durationArb }, { requiredKeys: [] })),
    extra: rarely(fc.tuple(nastyStringArb, cborValueArb))
  }).map(({ extra, ...m }) => withoutUndefined(extra == null ? m : { ...m, [extra[0]]: extra[1] }))
}

/** A record's fields: usually consistent (so the deeper checks run), each sometimes broken. */
export const recordArb: fc.Arbitrary<Record<string, unknown>> = fc.tuple(appNameArb, semverArb, fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }), fc.integer({ min: -1000, max: 1e10 })).chain(([app, version, issued, lifetime]) => fc.record({
  app: fieldArb(fc.constant(app), 40),
  version: fieldArb(fc.constant(version), 40),
  previous: fieldArb(fc.option(cidArb), 40),
  package: fieldArb(cidArb, 40),
  size: fieldArb(fc.oneof({ weight: 8, arbitrary: fc.nat() }, { weight: 1, arbitrary: fc.constantFrom(-1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER) }), 40),
  manifest: fieldArb(manifestArb(fc.constant(app), fc.constant(version)), 40),
  issued: fieldArb(fc.oneof({ weight: 8, arbitrary: fc.constant(issued.toISOString()) }, { weight: 1, arbitrary: isoTimeArb }), 40),
  expires: fieldArb(fc.oneof({ weight: 8, arbitrary: fc.constant(new Date(issued.getTime() + lifetime).toISOString()) }, { weight: 1, arbitrary: isoTimeArb }), 40),
  extra: rarely(fc.tuple(nastyStringArb, cborValueArb))
}).map(({ extra, ...r }) => withoutUndefined(extra == null ? r : { ...r, [extra[0]]: extra[1] })))

/** Signatures: well-formed, of the wrong size, by unknown keys, too many. */
export function signaturesArb (keys: string[]): fc.Arbitrary<unknown> {
  const signature = fc.record({
    key: fieldArb(fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: nastyStringArb }), 20),
    sig: fieldArb(fc.oneof({ weight: 6, arbitrary: fc.uint8Array({ minLength: 64, maxLength: 64 }) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 100 }) }), 20)
  }).map(withoutUndefined)
  return fieldArb(fc.oneof({ weight: 20, arbitrary: fc.array(signature, { maxLength: 3 }) }, { weight: 1, arbitrary: fc.array(signature, { minLength: 65, maxLength: 70 }) }), 40)
}
