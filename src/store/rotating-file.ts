/**
 * Logs that never grow without end: a file appended to (`events.jsonl`, `app.log`) is moved
 * aside when it passes its size — `events.jsonl` becomes `events.1.jsonl`, the one before
 * `events.2.jsonl`, … — and only `keep` old files stay. Readers list the files oldest first.
 *
 * @example
 * ```ts
 * const log = new RotatingWriter('DATA/app.log', { maxBytes: 16 * 1024 * 1024, keep: 4 })
 * child.stdout.pipe(log, { end: false })
 * for (const file of await rotatedFiles('DATA/events.jsonl', 4)) read(file) // oldest first
 * ```
 */
import fs from 'node:fs'
import path from 'node:path'
import { Writable } from 'node:stream'

/** How big a log file grows, and how many old ones are kept. */
export interface LogLimit {
  /** Bytes a file may hold before it is moved aside. */
  maxBytes: number
  /** Old files kept beside the current one (`NAME.1.EXT` … `NAME.keep.EXT`). */
  keep: number
}

/** The defaults: 16 MiB a file, four old ones (80 MiB at most for each log). */
export const DEFAULT_LOG_LIMIT: LogLimit = { maxBytes: 16 * 1024 * 1024, keep: 4 }

/** `events.jsonl` → `events.3.jsonl` for `n` = 3 (0: the file itself). */
export function rotatedName (file: string, n: number): string {
  if (n === 0) return file
  const ext = path.extname(file)
  return `${file.slice(0, file.length - ext.length)}.${n}${ext}`
}

/** Move `file` aside as `NAME.1.EXT`, shifting the older ones up and dropping the one past `keep`. */
export function rotateSync (file: string, keep: number): void {
  fs.rmSync(rotatedName(file, keep), { force: true })
  for (let n = keep - 1; n >= 0; n--) {
    try {
      fs.renameSync(rotatedName(file, n), rotatedName(file, n + 1))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
}

/** Rotate `file` if it already holds `maxBytes` or more (before a writer that cannot count opens it). */
export function rotateIfFull (file: string, limit: LogLimit): void {
  let size = 0
  try {
    size = fs.statSync(file).size
  } catch {}
  if (size >= limit.maxBytes) rotateSync(file, limit.keep)
}

/** The log's files that exist, oldest first: `NAME.keep.EXT` … `NAME.1.EXT`, then `file`. */
export async function rotatedFiles (file: string, keep: number): Promise<string[]> {
  const out: string[] = []
  for (let n = keep; n >= 0; n--) {
    const name = rotatedName(file, n)
    if (await fs.promises.stat(name).then(() => true, () => false)) out.push(name)
  }
  return out
}

/**
 * An append stream onto `file`, opened at once (not when the stream gets to it: a
 * rotation's rename must find the file open), with the bytes the file holds already.
 * Errors are swallowed on the stream: its owner sees it `destroyed`.
 */
export function openAppend (file: string, mode = 0o600): { stream: fs.WriteStream, size: number } {
  let size = 0
  try {
    size = fs.statSync(file).size
  } catch {}
  let fd: number | undefined
  try {
    fd = fs.openSync(file, 'a', mode)
  } catch {}
  const stream = fd == null ? fs.createWriteStream(file, { flags: 'a', mode }) : fs.createWriteStream(file, { fd })
  stream.on('error', () => {})
  return { stream, size }
}

/**
 * When `bytes` more would take a log of `size` past its limit (a file holding nothing takes
 * them whatever their size): end `stream`, move the file aside, and open it again, empty.
 */
export function rotateIfOver (file: string, stream: fs.WriteStream, size: number, bytes: number, limit: LogLimit, mode = 0o600): { stream: fs.WriteStream, size: number } {
  if (size === 0 || size + bytes <= limit.maxBytes) return { stream, size }
  stream.end()
  try {
    rotateSync(file, limit.keep)
  } catch {}
  return openAppend(file, mode)
}

/**
 * A writable stream onto a log file that moves it aside when a write would take it past
 * `maxBytes`. Write errors (a full disk) are swallowed: a log must never stop what it logs.
 */
export class RotatingWriter extends Writable {
  private readonly file: string
  private readonly limit: LogLimit
  private readonly mode: number
  private out: fs.WriteStream
  private size: number

  constructor (file: string, limit: LogLimit = DEFAULT_LOG_LIMIT, mode = 0o600) {
    super()
    this.file = file
    this.limit = limit
    this.mode = mode
    fs.mkdirSync(path.dirname(file), { recursive: true });
    ({ stream: this.out, size: this.size } = openAppend(file, mode))
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    ({ stream: this.out, size: this.size } = rotateIfOver(this.file, this.out, this.size, chunk.byteLength, this.limit, this.mode))
    this.size += chunk.byteLength
    this.out.write(chunk, () => { done() })
  }

  override _final (done: (error?: Error | null) => void): void {
    this.out.end(() => { done() })
  }
}
