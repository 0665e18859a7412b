/**
 * What a path inside a package may look like: relative, `/`-separated, NFC, with no
 * empty, `.` or `..` segment, so that nothing unpacked can land outside its directory.
 */
import { ContentRefusalError } from '../errors.js'

/** A path in a package (or a manifest) could escape the package or is not portable. */
export class UnsafePathError extends ContentRefusalError {
  static override name = 'UnsafePathError'
}

/** A path whose first segment reads as a Windows drive (`C:`…). */
const DRIVE_LETTER = /^[A-Za-z]:/

/** Why a single file or directory name is not allowed, or undefined when it is. */
export function nameProblem (name: string): string | undefined {
  if (name === '') return 'an empty name'
  if (name === '.' || name === '..') return `the name "${name}"`
  if (name.includes('/')) return 'a "/" inside a name'
  if (name.includes('\\')) return 'a "\\" in a name'
  if (name.includes('\0')) return 'a NUL byte in a name'
  if (name.normalize('NFC') !== name) return 'a name that is not Unicode NFC'
  if (Buffer.byteLength(name) > 255) return 'a name longer than 255 bytes'
  return undefined
}

/** Why `path` is not a safe relative package path, or undefined when it is. */
export function pathProblem (path: string): string | undefined {
  if (path.startsWith('/')) return 'an absolute path'
  if (DRIVE_LETTER.test(path)) return 'a drive-letter path'
  for (const segment of path.split('/')) {
    const problem = nameProblem(segment)
    if (problem != null) return problem
  }
  return undefined
}

/**
 * Why the entry `name`, at `rel` in its package (its parent's path, "/", the name), is not
 * allowed: a name that is not allowed, or a first segment that reads as a drive letter.
 */
export function entryProblem (rel: string, name: string): string | undefined {
  // the parent's segments were checked as entries themselves: only the name and the drive letter are new
  return nameProblem(name) ?? (DRIVE_LETTER.test(rel) ? 'a drive-letter path' : undefined)
}

/** Throw {@link UnsafePathError} unless `path` is a safe relative package path. */
export function assertSafePath (path: string, where = 'path'): void {
  const problem = pathProblem(path)
  if (problem != null) throw new UnsafePathError(`${where} "${path}" is refused: ${problem}`)
}
