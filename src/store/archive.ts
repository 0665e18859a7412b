/**
 * Gzip-compressed tar archives, as backups are written and read: POSIX ustar headers, with
 * a pax header for a path over 100 bytes (or not ASCII) and a size over 8 GiB, so that
 * `tar -tzf` lists one and `tar -xzf` unpacks it. Only regular files and directories are
 * written or read; the reader refuses everything else, and any path that is absolute,
 * has a `..` or `.` segment, or is empty, by name, before the caller sees it.
 *
 * @example
 * ```ts
 * const out = await ArchiveWriter.create('peer.tar.gz')
 * await out.addBytes('notes/hello.txt', new TextEncoder().encode('hi'))
 * await out.finish()
 * await readArchive(fs.createReadStream('peer.tar.gz'), async (entry, body) => { for await (const chunk of body) … })
 * ```
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import { UpgossipError } from '../errors.js'
import { fsyncDirectory } from './atomic-file.js'

/** The archive ends before its end: it was cut short (a copy or a download that stopped). */
export class ArchiveTruncatedError extends UpgossipError {
  static override name = 'ArchiveTruncatedError'
}

/** The archive's bytes are not a gzip-compressed tar archive, or are damaged. */
export class ArchiveCorruptError extends UpgossipError {
  static override name = 'ArchiveCorruptError'
}

/** An entry's path would land outside the directory it is unpacked into (absolute, `..`), or is empty. */
export class ArchivePathUnsafeError extends UpgossipError {
  static override name = 'ArchivePathUnsafeError'
}

/** An entry of a kind never unpacked: a link, a device, a fifo, or a name the reader's caller refuses. */
export class ArchiveEntryUnsupportedError extends UpgossipError {
  static override name = 'ArchiveEntryUnsupportedError'
}

/** The archive's target file exists: an archive never replaces one. */
export class ArchiveExistsError extends UpgossipError {
  static override name = 'ArchiveExistsError'
}

/** One entry of an archive. */
export interface ArchiveEntry {
  /** Relative, `/`-separated, checked: no `..`, `.` or empty segment, not absolute. */
  path: string
  type: 'file' | 'directory'
  /** Permission bits (`0o644`). */
  mode: number
  /** Bytes of a file (0 for a directory). */
  size: number
  /** Modification time, in seconds since the epoch. */
  mtime: number
}

const BLOCK = 512
/** The largest size a ustar header holds in octal (8 GiB - 1). */
const MAX_OCTAL_SIZE = 0o77777777777

/**
 * The path as an archive may carry it, or {@link ArchivePathUnsafeError}: relative, with
 * no empty, `.` or `..` segment and no NUL (a trailing `/` of a directory is dropped).
 */
export function checkArchivePath (raw: string): string {
  const p = raw.endsWith('/') ? raw.slice(0, -1) : raw
  const segments = p.split('/')
  let bad: string | undefined
  if (p === '') bad = 'it is empty'
  else if (p.startsWith('/')) bad = 'it is absolute'
  else if (p.includes('\0')) bad = 'it holds a NUL byte'
  else if (segments.includes('..')) bad = 'it climbs out with ".."'
  else if (segments.some(s => s === '' || s === '.')) bad = 'it has an empty or "." segment'
  if (bad != null) throw new ArchivePathUnsafeError(`the archive has an entry "${raw.slice(0, 200)}" whose path is unsafe (${bad}); nothing is unpacked outside the target directory`)
  return p
}

function octal (value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0'
}

/** A pax record: `<length> <key>=<value>\n`, the length counting itself. */
function paxRecord (key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  const bytes = Buffer.byteLength(body)
  let length = bytes + 1
  while (String(length).length + bytes !== length) length++
  return `${length}${body}`
}

function header (name: string, type: string, mode: number, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK)
  h.write(name, 0, 100, 'utf8')
  h.write(octal(mode & 0o7777, 8), 100, 'ascii')
  h.write(octal(0, 8), 108, 'ascii')
  h.write(octal(0, 8), 116, 'ascii')
  h.write(octal(Math.min(size, MAX_OCTAL_SIZE), 12), 124, 'ascii')
  h.write(octal(Math.max(0, Math.floor(mtime)), 12), 136, 'ascii')
  h.write('        ', 148, 'ascii')
  h.write(type, 156, 'ascii')
  h.write('ustar\0' + '00', 257, 'ascii')
  let sum = 0
  for (const byte of h) sum += byte
  h.write(octal(sum, 7) + ' ', 148, 'ascii')
  return h
}

/** The header blocks of an entry: a pax header first when the path or size needs one. */
function entryHeaders (p: string, type: '0' | '5', mode: number, size: number, mtime: number): Buffer[] {
  const name = type === '5' ? `${p}/` : p
  const records = [
    ...(Buffer.byteLength(name) > 100 || !/^[\x20-\x7e]*$/.test(name) ? [paxRecord('path', name)] : []),
    ...(size > MAX_OCTAL_SIZE ? [paxRecord('size', String(size))] : [])
  ]
  const out: Buffer[] = []
  if (records.length > 0) {
    const body = Buffer.from(records.join(''), 'utf8')
    out.push(header('PaxHeader', 'x', 0o644, body.length, mtime), body, Buffer.alloc(padding(body.length)))
  }
  out.push(header(name.replace(/[^\x20-\x7e]/g, '_').slice(0, 100), type, mode, size, mtime))
  return out
}

function existing (file: string): ArchiveExistsError {
  return new ArchiveExistsError(`${file} exists; an archive never replaces a file: choose another name or remove it`)
}

function padding (size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/** Writes an archive into a temporary file next to its target, renamed into place (mode 0600) only by {@link ArchiveWriter.finish}. */
export class ArchiveWriter {
  private readonly gzip = zlib.createGzip()
  private readonly done: Promise<void>
  /** Rejects when writing fails, never resolves: what a wait for `drain` races with. */
  private readonly failure: Promise<never>
  private failed: Error | undefined
  private written = false

  private constructor (readonly file: string, private readonly temp: string) {
    this.done = pipeline(this.gzip, createWriteStream(temp, { flags: 'wx', mode: 0o600 }))
    this.failure = this.done.then(async () => await new Promise<never>(() => {}), (err: Error) => { this.failed = err; throw err })
    this.failure.catch(() => {})
  }

  /** Start an archive that will be `file`; {@link ArchiveExistsError} if there is one. */
  static async create (file: string): Promise<ArchiveWriter> {
    if (await fs.lstat(file).then(() => true, () => false)) throw existing(file)
    return new ArchiveWriter(file, path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.partial`))
  }

  private async write (chunk: Buffer): Promise<void> {
    if (this.failed != null) throw this.failed
    if (!this.gzip.write(chunk)) await Promise.race([once(this.gzip, 'drain'), this.failure])
  }

  /** A directory entry. */
  async addDirectory (p: string, mode: number, mtime: number): Promise<void> {
    for (const b of entryHeaders(checkArchivePath(p), '5', mode, 0, mtime)) await this.write(b)
  }

  /** A file entry of `size` bytes from `chunks`: cut at `size`, or padded with zeros if they end before it. */
  async addFile (p: string, mode: number, mtime: number, size: number, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    for (const b of entryHeaders(checkArchivePath(p), '0', mode, size, mtime)) await this.write(b)
    let left = size
    for await (const chunk of chunks) {
      if (left === 0) break
      const piece = Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(chunk.byteLength, left))
      left -= piece.byteLength
      await this.write(piece)
    }
    if (left > 0) await this.write(Buffer.alloc(left))
    await this.write(Buffer.alloc(padding(size)))
  }

  /** A small file entry from bytes in memory. */
  async addBytes (p: string, data: Uint8Array, mode = 0o600, mtime = Date.now() / 1000): Promise<void> {
    await this.addFile(p, mode, mtime, data.byteLength, [data])
  }

  /** Write the end, make it durable and rename it into place; resolves to the archive's size in bytes. */
  async finish (): Promise<number> {
    await this.write(Buffer.alloc(2 * BLOCK))
    this.gzip.end()
    await this.done
    const handle = await fs.open(this.temp, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
    // a link never replaces a file that appeared meanwhile; a file system without links gets a rename
    await fs.link(this.temp, this.file).then(async () => { await fs.rm(this.temp, { force: true }) }, async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST' && !await fs.lstat(this.file).then(() => true, () => false)) return await fs.rename(this.temp, this.file)
      await fs.rm(this.temp, { force: true })
      throw err.code === 'EEXIST' ? existing(this.file) : err
    })
    await fsyncDirectory(path.dirname(this.file))
    this.written = true
    return (await fs.stat(this.file)).size
  }

  /** Give up: the temporary file goes, nothing is left under the target's name. */
  async abort (): Promise<void> {
    if (this.written) return
    this.gzip.destroy()
    await this.done.catch(() => {})
    await fs.rm(this.temp, { force: true })
  }
}

/** Bytes pulled from a stream: exact reads, and a body read as chunks. */
class ByteSource {
  private readonly it: AsyncIterator<Uint8Array>
  private buffer = Buffer.alloc(0)
  private ended = false
  /** Bytes of the body being read that nobody has read yet. */
  private unread = 0

  constructor (source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]()
  }

  private async more (): Promise<boolean> {
    if (this.ended) return false
    let next: IteratorResult<Uint8Array>
    try {
      next = await this.it.next()
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(e.message)) throw new ArchiveTruncatedError('the archive ends before its end: it was cut short (an interrupted copy or download?)')
      if (typeof e.code === 'string' && e.code.startsWith('Z_')) throw new ArchiveCorruptError(`the archive is not gzip-compressed or is damaged: ${e.message}`)
      throw err
    }
    if (next.done === true) {
      this.ended = true
      return false
    }
    this.buffer = this.buffer.length === 0 ? Buffer.from(next.value) : Buffer.concat([this.buffer, next.value])
    return true
  }

  /** Exactly `n` bytes, or undefined when the stream ended exactly here. */
  async take (n: number, what: string): Promise<Buffer | undefined> {
    while (this.buffer.length < n) {
      if (!await this.more()) {
        if (this.buffer.length === 0) return undefined
        throw new ArchiveTruncatedError(`the archive ends in the middle of ${what}: it was cut short`)
      }
    }
    const out = this.buffer.subarray(0, n)
    this.buffer = this.buffer.subarray(n)
    return out
  }

  /** A body of `n` bytes, read as they come; {@link skipBody} passes over what is left of it. */
  body (n: number, what: string): AsyncIterable<Buffer> {
    this.unread = n
    const next = async (): Promise<Buffer | undefined> => {
      if (this.unread === 0) return undefined
      if (this.buffer.length === 0 && !await this.more()) throw new ArchiveTruncatedError(`the archive ends in the middle of ${what}: it was cut short`)
      const piece = this.buffer.subarray(0, Math.min(this.unread, this.buffer.length))
      this.buffer = this.buffer.subarray(piece.length)
      this.unread -= piece.length
      return Buffer.from(piece)
    }
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Buffer>> => {
          const value = await next()
          return value == null ? { done: true, value: undefined } : { done: false, value }
        }
      })
    }
  }

  /** Read past what is left of the current body. */
  async skipBody (what: string): Promise<void> {
    const it = this.body(this.unread, what)[Symbol.asyncIterator]()
    while ((await it.next()).done !== true);
  }

  /** Read to the end, so a damaged gzip trailer (its checksum) is still found. */
  async drain (): Promise<void> {
    while (await this.more()) this.buffer = Buffer.alloc(0)
  }
}

function field (h: Buffer, start: number, length: number): string {
  const raw = h.subarray(start, start + length)
  const nul = raw.indexOf(0)
  return raw.subarray(0, nul === -1 ? length : nul).toString('utf8')
}

function number (h: Buffer, start: number, length: number, what: string): number {
  // GNU base-256 for values octal cannot hold
  if (((h[start] ?? 0) & 0x80) !== 0) {
    let n = 0
    for (let i = start + 1; i < start + length; i++) n = n * 256 + (h[i] ?? 0)
    return n
  }
  const text = field(h, start, length).trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) throw new ArchiveCorruptError(`the archive has a header whose ${what} is not a number; it is damaged or not a tar archive`)
  return parseInt(text, 8)
}

function parseHeader (h: Buffer): { name: string, type: string, mode: number, size: number, mtime: number } {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i] ?? 0
  if (number(h, 148, 8, 'checksum') !== sum) throw new ArchiveCorruptError('the archive has a header whose checksum does not match: it is damaged or not a tar archive')
  if (field(h, 257, 6).trim() !== 'ustar') throw new ArchiveCorruptError('the archive is not a ustar tar archive')
  const prefix = field(h, 345, 155)
  const name = field(h, 0, 100)
  return { name: prefix === '' ? name : `${prefix}/${name}`, type: String.fromCharCode(h[156] ?? 0), mode: number(h, 100, 8, 'mode'), size: number(h, 124, 12, 'size'), mtime: number(h, 136, 12, 'mtime') }
}

function parsePax (body: Buffer): Map<string, string> {
  const out = new Map<string, string>()
  let at = 0
  while (at < body.length) {
    const space = body.indexOf(0x20, at)
    const length = Number(body.subarray(at, space).toString('ascii'))
    if (space === -1 || !Number.isSafeInteger(length) || length <= 0 || at + length > body.length) throw new ArchiveCorruptError('the archive has a damaged pax header')
    const record = body.subarray(space + 1, at + length - 1).toString('utf8')
    const eq = record.indexOf('=')
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1))
    at += length
  }
  return out
}

const MAX_PAX_BYTES = 1024 * 1024

/**
 * Read a gzip-compressed tar archive, calling `onEntry` for each file and directory in
 * order; a body not read to its end is skipped. Throws {@link ArchiveTruncatedError},
 * {@link ArchiveCorruptError}, {@link ArchivePathUnsafeError} or
 * {@link ArchiveEntryUnsupportedError} (whatever `onEntry` wrote before is the caller's to undo).
 */
export async function readArchive (source: AsyncIterable<Uint8Array>, onEntry: (entry: ArchiveEntry, body: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  const gunzip = zlib.createGunzip()
  const feeding = pipeline(source, gunzip).catch(() => {})
  const bytes = new ByteSource(gunzip)
  let pax = new Map<string, string>()
  try {
    for (;;) {
      const block = await bytes.take(BLOCK, 'a header')
      if (block == null) throw new ArchiveTruncatedError('the archive ends without the end of a tar archive: it was cut short')
      if (block.every(b => b === 0)) break
      const h = parseHeader(block)
      const size = pax.has('size') ? Number(pax.get('size')) : h.size
      if (!Number.isSafeInteger(size) || size < 0) throw new ArchiveCorruptError(`the archive has an entry "${h.name}" with a bad size`)
      if (h.type === 'x' || h.type === 'g') {
        if (size > MAX_PAX_BYTES) throw new ArchiveCorruptError(`the archive has a pax header of ${size} bytes, more than ${MAX_PAX_BYTES}`)
        const body = (await bytes.take(size, 'a pax header')) ?? Buffer.alloc(0)
        await bytes.take(padding(size), 'a pax header')
        if (h.type === 'x') pax = parsePax(body)
        continue
      }
      const raw = pax.get('path') ?? h.name
      pax = new Map()
      if (h.type !== '0' && h.type !== '\0' && h.type !== '5') {
        throw new ArchiveEntryUnsupportedError(`the archive has an entry "${raw.slice(0, 200)}" of type "${h.type}" (a link, a device or a fifo); only files and directories are unpacked`)
      }
      const entry: ArchiveEntry = { path: checkArchivePath(raw), type: h.type === '5' ? 'directory' : 'file', mode: h.mode & 0o7777, size: h.type === '5' ? 0 : size, mtime: h.mtime }
      await onEntry(entry, bytes.body(entry.size, `the file ${entry.path}`))
      await bytes.skipBody(`the file ${entry.path}`)
      if (entry.size > 0) await bytes.take(padding(entry.size), `the file ${entry.path}`)
    }
    await bytes.drain()
  } finally {
    gunzip.destroy()
    await feeding
  }
}
