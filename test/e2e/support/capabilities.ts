/**
 * Tests that need what a machine may lack — root, iproute2 (`ip netns`, `tc`), mounting a
 * tmpfs: on a developer's machine they are skipped with a warning that says why; in CI
 * (`CI=true`) the lack fails the run instead, so that a green run means they ran. `.ci/run`
 * installs what they need.
 *
 * @example
 * ```ts
 * const capableHere = capable('partition.test.ts', netnsUnavailable())
 * describe.skipIf(!capableHere)('a network partition between namespaces', () => { … })
 * ```
 */

/**
 * Whether the tests of `name` can run: `missing` is why not (undefined: they can). Warns
 * when they cannot; throws instead when `CI=true`, failing the file.
 */
export function capable (name: string, missing: string | undefined): boolean {
  if (missing == null) return true
  if (process.env.CI === 'true') throw new Error(`${name} cannot run on this machine: ${missing}. In CI (CI=true) that fails the run instead of skipping; .ci/run installs iproute2 and must run as root`)
  console.warn(`${name} skipped: ${missing}`)
  return false
}

/** Why a test that needs root cannot run here, or undefined when it runs as root. */
export function rootUnavailable (what: string): string | undefined {
  return process.getuid?.() === 0 ? undefined : `it needs root ${what}`
}
