/**
 * How commands talk to the user: data on stdout (JSON only with `--json`), everything
 * else on stderr, and the exit codes of docs/cli.md (0 ok, 1 refused or invalid, 2 usage).
 */
import fs from 'node:fs/promises'
import { UpgossipError } from '../errors.js'

/** Exit code: done. */
export const EXIT_OK = 0
/** Exit code: refused or invalid. */
export const EXIT_REFUSED = 1
/** Exit code: a usage error (including unknown options). */
export const EXIT_USAGE = 2

/** The command line was wrong (exit 2). */
export class UsageError extends UpgossipError {
  static override name = 'UsageError'
}

/** A file named on the command line could not be read. */
export class InputFileError extends UpgossipError {
  static override name = 'InputFileError'
}

// `upgossip status | head`: a reader that goes away is not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
})

/**
 * `text` with control characters (C0 but tab and newline, DEL, C1) shown as `?`: what a
 * terminal prints comes partly from other peers (versions, reasons in beats), and an
 * escape sequence in them must not move the cursor, rewrite lines or set the title.
 */
export function printable (text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?')
}

/** Print a line of data on stdout. */
export function say (text: string): void {
  process.stdout.write(printable(text) + '\n')
}

/** Print a value as JSON on stdout. */
export function sayJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('base64')
    if (v != null && typeof v === 'object' && (v as { '/': unknown })['/'] === v) return String(v)
    return v
  }, 2) + '\n')
}

/** A byte count as people read it: `512 B`, `4.2 KiB`, `1.3 MiB`, `2.1 GiB`. */
export function formatBytes (n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(1)} GiB`
}

/** Print a note for the user on stderr (progress, hints). */
export function note (text: string): void {
  process.stderr.write(printable(text) + '\n')
}

/** Read a file named on the command line; a missing file is a refusal that says which. */
export async function readInput (file: string): Promise<Uint8Array> {
  try {
    return await fs.readFile(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new InputFileError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`)
  }
}

/** Largest bundle file read (the CAR limit), checked before reading. */
const MAX_BUNDLE_FILE = 1024 * 1024 * 1024

/** Read a bundle file named on the command line, refusing one over the size limit before reading it. */
export async function readBundleFile (file: string): Promise<Uint8Array> {
  const stat = await fs.stat(file).catch(() => undefined)
  if (stat != null && stat.size > MAX_BUNDLE_FILE) throw new InputFileError(`${file} is ${stat.size} bytes, more than the ${MAX_BUNDLE_FILE}-byte limit of a bundle`)
  return await readInput(file)
}

/** The passphrase held in the environment variable named by `--passphrase-env`, if given. */
export function passphraseFromEnv (variable: string | undefined): string | undefined {
  if (variable == null) return undefined
  const value = process.env[variable]
  if (value == null || value === '') throw new UsageError(`--passphrase-env ${variable}: that environment variable is not set`)
  return value
}
