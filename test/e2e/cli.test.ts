/**
 * End-to-end tests of the compiled `upgossip` CLI (bin/upgossip.js → dist/), run as child
 * processes on real files: the publisher's offline commands (keygen, pack, release, sign,
 * verify, inspect), what they refuse and with which named error, and the exit-code contract
 * of docs/cli.md (0 ok, 1 refused or invalid with a one-line reason, 2 usage error).
 * Run `npm run build` first (`npm test` does).
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { CarReader, CarWriter } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { manifest, samplePackage, tempDir, writeTree } from '../helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIN = path.join(ROOT, 'bin', 'upgossip.js')
const RUN_TIMEOUT_MS = 30_000

interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

let compileCache: string | undefined

/** Run the real CLI in a child process on this (pinned, 22+) Node; never rejects on a non-zero exit. */
async function runCli (args: string[], opts: { cwd?: string, env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env }
  delete env.DEBUG
  if (compileCache != null) env.NODE_COMPILE_CACHE = compileCache
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`upgossip ${args.join(' ')} did not exit within ${RUN_TIMEOUT_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, RUN_TIMEOUT_MS)
    child.on('error', err => { clearTimeout(timer); reject(err) })
    child.on('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

function show (r: CliResult): string {
  return `exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`
}

/** Success: exit 0. */
function expectOk (r: CliResult): void {
  expect(r.code, show(r)).toBe(0)
}

/** A refusal: exit 1, nothing on stdout, exactly one line on stderr naming the error class. */
function expectRefused (r: CliResult, errorName: string, mentions: string[] = []): void {
  expect(r.code, show(r)).toBe(1)
  expect(r.stdout, show(r)).toBe('')
  const lines = r.stderr.split('\n').filter(line => line !== '')
  expect(lines, show(r)).toHaveLength(1)
  expect(lines[0], show(r)).toMatch(new RegExp(`^upgossip: .+ \\[${errorName}\\]$`))
  for (const text of mentions) expect(lines[0], show(r)).toContain(text)
}

/** A usage error: exit 2, nothing on stdout, the reason on stderr. */
function expectUsage (r: CliResult, mentions: string[] = []): void {
  expect(r.code, show(r)).toBe(2)
  expect(r.stdout, show(r)).toBe('')
  expect(r.stderr.trim(), show(r)).not.toBe('')
  for (const text of mentions) expect(r.stderr, show(r)).toContain(text)
}

/** The single line printed on stdout. */
function oneLine (r: CliResult): string {
  expect(r.stdout.endsWith('\n'), show(r)).toBe(true)
  const lines = r.stdout.slice(0, -1).split('\n')
  expect(lines, show(r)).toHaveLength(1)
  return lines[0] as string
}

interface SignedReleaseValue {
  record: Record<string, unknown> & { manifest: Record<string, unknown> }
  signatures: Array<{ key: string, sig: Uint8Array }>
}

/**
 * Decode a bundle's root block, let `change` edit it, and write a well-formed CAR whose
 * root is the re-encoded block under its correct CID: a forgery that still decodes.
 */
async function rewriteRoot (car: Uint8Array, change: (signed: SignedReleaseValue) => void): Promise<Uint8Array> {
  const reader = await CarReader.fromBytes(car)
  const [root] = await reader.getRoots()
  if (root == null) throw new Error('bundle has no root')
  const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
  for await (const block of reader.blocks()) blocks.push({ cid: CID.decode(block.cid.bytes), bytes: block.bytes })
  const rootBlock = blocks.find(b => b.cid.equals(CID.decode(root.bytes)))
  if (rootBlock == null) throw new Error('bundle lacks its root block')
  const signed = dagCbor.decode<SignedReleaseValue>(rootBlock.bytes)
  change(signed)
  const bytes = dagCbor.encode(signed)
  const cid = CID.createV1(dagCbor.code, await sha256.digest(bytes))
  const { writer, out } = CarWriter.create([cid])
  const chunks: Uint8Array[] = []
  const collecting = (async () => { for await (const chunk of out) chunks.push(chunk) })()
  await writer.put({ cid, bytes })
  for (const block of blocks) if (block !== rootBlock) await writer.put(block)
  await writer.close()
  await collecting
  return Buffer.concat(chunks)
}

/** A copy of `bytes` with the first occurrence of `needle` (which must occur) changed by one bit. */
function flipByteInside (bytes: Uint8Array, needle: Uint8Array | string, offset = 0): Buffer {
  const copy = Buffer.from(bytes)
  const at = copy.indexOf(Buffer.from(needle))
  expect(at, 'the bytes to tamper with are in the file').toBeGreaterThanOrEqual(0)
  copy[at + offset] = (copy[at + offset] as number) ^ 0x01
  return copy
}

const STORE_JS = 'export function get () { return 1 }\n'

interface Key { file: string, id: string, keygen: CliResult }

let root: string
let pkg: string
const keys: Record<'a' | 'b' | 'c', Key> = {} as Record<'a' | 'b' | 'c', Key>
let encrypted: Key
/** Released from `pkg`, signed by key a only. */
let baseCar: string
let baseId: string
let releaseRun: CliResult
/** Trust files. */
const trust = { a1: '', ab2: '', otherApp: '' }

async function keygen (name: string, env?: Record<string, string>): Promise<Key> {
  const file = path.join(root, `${name}.key`)
  const args = ['keygen', '--out', file]
  if (env != null) args.push('--passphrase-env', Object.keys(env)[0] as string)
  const result = await runCli(args, { env })
  expectOk(result)
  return { file, id: result.stdout.trim(), keygen: result }
}

async function writeJson (name: string, value: unknown): Promise<string> {
  const file = path.join(root, name)
  await fs.writeFile(file, JSON.stringify(value))
  return file
}

async function copyOf (file: string, name: string): Promise<string> {
  const copy = path.join(root, name)
  await fs.copyFile(file, copy)
  return copy
}

beforeAll(async () => {
  root = await tempDir('upgossip-e2e-cli-')
  compileCache = path.join(root, '.node-compile-cache')
  // one run alone first fills the compile cache that the later, parallel runs read
  keys.a = await keygen('a')
  const [b, c, e] = await Promise.all([keygen('b'), keygen('c'), keygen('enc', { UPGOSSIP_TEST_PASS: 'correct horse' })])
  keys.b = b
  keys.c = c
  encrypted = e
  pkg = await samplePackage(root, '1.0.0')
  baseCar = path.join(root, 'base.car')
  releaseRun = await runCli(['release', pkg, '--key', keys.a.file, '--out', baseCar])
  expectOk(releaseRun)
  baseId = releaseRun.stdout.trim()
  trust.a1 = await writeJson('trust-a1.json', { apps: { kv: { publishers: [keys.a.id], threshold: 1 } } })
  trust.ab2 = await writeJson('trust-ab2.json', { apps: { kv: { publishers: [keys.a.id, keys.b.id], threshold: 2 } } })
  trust.otherApp = await writeJson('trust-other.json', { apps: { other: { publishers: [keys.a.id], threshold: 1 } } })
})

afterAll(async () => {
  if (root != null) await fs.rm(root, { recursive: true, force: true })
})

// Every test runs its CLI processes concurrently with the others: the file is bound by
// process start-up (loading dist/ takes most of each run), not by the work itself.
describe.concurrent('upgossip CLI', () => {
  describe('keygen', () => {
    it('prints only the public key, one line starting with z6Mk, and writes the key file with mode 0600', async () => {
      const { keygen: r, file, id } = keys.a
      expect(oneLine(r)).toBe(id)
      expect(id).toMatch(/^z6Mk[1-9A-HJ-NP-Za-km-z]{40,}$/)
      expect((await fs.stat(file)).mode & 0o777).toBe(0o600)
      expect(new Set([keys.a.id, keys.b.id, keys.c.id, encrypted.id]).size).toBe(4)
    })

    it('with --passphrase-env writes an encrypted key file (0600) that opens only with that passphrase', async () => {
      expect(oneLine(encrypted.keygen)).toMatch(/^z6Mk/)
      expect((await fs.stat(encrypted.file)).mode & 0o777).toBe(0o600)
      const text = await fs.readFile(encrypted.file, 'utf8')
      expect(text).not.toContain('"privateKey"')
      expect(text).toContain('"encrypted"')
      const out = path.join(root, 'enc-ok.car')
      const r = await runCli(['release', pkg, '--key', encrypted.file, '--passphrase-env', 'P', '--out', out, '--json'], { env: { P: 'correct horse' } })
      expectOk(r)
      // with --json, stdout is JSON only
      const summary = JSON.parse(r.stdout) as { id: string, signers: string[], out: string }
      expect(summary.id).toMatch(/^bafyrei/)
      expect(summary.signers).toEqual([encrypted.id])
      expect(summary.out).toBe(out)
      expect((await fs.stat(out)).size).toBeGreaterThan(0)
    })

    it('refuses a wrong passphrase (WrongPassphraseError) and a missing one (PassphraseRequiredError)', async () => {
      const out = path.join(root, 'enc-wrong.car')
      const [wrong, missing] = await Promise.all([
        runCli(['release', pkg, '--key', encrypted.file, '--passphrase-env', 'P', '--out', out], { env: { P: 'battery staple' } }),
        runCli(['release', pkg, '--key', encrypted.file, '--out', out])
      ])
      expectRefused(wrong, 'WrongPassphraseError')
      expectRefused(missing, 'PassphraseRequiredError', ['--passphrase-env'])
      await expect(fs.stat(out)).rejects.toThrow(/ENOENT/)
    })

    it('never overwrites an existing key file', async () => {
      const before = await fs.readFile(keys.b.file, 'utf8')
      const r = await runCli(['keygen', '--out', keys.b.file])
      expectRefused(r, 'KeyFileExistsError', [keys.b.file])
      expect(await fs.readFile(keys.b.file, 'utf8')).toBe(before)
    })

    it('is a usage error (exit 2) when --passphrase-env names an unset variable, and writes nothing', async () => {
      const file = path.join(root, 'never.key')
      const r = await runCli(['keygen', '--out', file, '--passphrase-env', 'UPGOSSIP_TEST_UNSET_VAR'], { env: { UPGOSSIP_TEST_UNSET_VAR: undefined } })
      expectUsage(r, ['UPGOSSIP_TEST_UNSET_VAR'])
      await expect(fs.stat(file)).rejects.toThrow(/ENOENT/)
    })
  })

  describe('pack', () => {
    it('prints the package CID, one line starting with bafy', async () => {
      const r = await runCli(['pack', pkg])
      expectOk(r)
      expect(oneLine(r)).toMatch(/^bafy[a-z2-7]+$/)
    })

    it('is deterministic: file order, mtimes, modes, NFC/NFD names, empty directories and the directory name do not change the CID', async () => {
      const nfc = 'café'.normalize('NFC')
      const nfd = 'café'.normalize('NFD')
      expect(nfd).not.toBe(nfc)
      const files = (name: string): Record<string, string> => ({
        'upgossip.json': manifest('1.0.0'),
        'server.js': "export const version = '1.0.0'\n",
        'lib/store.js': STORE_JS,
        [`lib/${name}.js`]: 'export const accent = true\n',
        [`docs/${name}/readme.txt`]: 'hello\n'
      })
      const one = path.join(root, 'det-one')
      await writeTree(one, files(nfc))
      const two = path.join(root, 'det-two-other-name')
      await writeTree(two, Object.fromEntries(Object.entries(files(nfd)).reverse()))
      await fs.mkdir(path.join(two, 'empty'))
      await fs.mkdir(path.join(two, 'lib', 'nested', 'also-empty'), { recursive: true })
      await fs.chmod(path.join(two, 'server.js'), 0o755)
      await fs.chmod(path.join(two, 'lib', 'store.js'), 0o700)
      await fs.chmod(path.join(one, 'lib', 'store.js'), 0o600)
      const old = new Date('2001-02-03T04:05:06Z')
      for (const rel of Object.keys(files(nfd))) await fs.utimes(path.join(two, ...rel.split('/')), old, old)
      // the filesystem must keep the NFD spelling, or this test would prove nothing
      expect(await fs.readdir(path.join(two, 'lib'))).toContain(`${nfd}.js`)
      expect(await fs.readdir(path.join(one, 'lib'))).not.toContain(`${nfd}.js`)

      const changed = path.join(root, 'det-changed')
      await writeTree(changed, { ...files(nfc), 'lib/store.js': STORE_JS.replace('1', '2') })

      const [a, b, c, json] = await Promise.all([runCli(['pack', one]), runCli(['pack', two]), runCli(['pack', changed]), runCli(['pack', two, '--json'])])
      for (const r of [a, b, c, json]) expectOk(r)
      expect(oneLine(b)).toBe(oneLine(a))
      expect(oneLine(c)).not.toBe(oneLine(a))
      const info = JSON.parse(json.stdout) as { cid: string, files: Array<{ path: string, bytes: number }> }
      expect(info.cid).toBe(oneLine(a))
      expect(info.files.map(f => f.path).sort()).toEqual(['docs/café/readme.txt', 'lib/café.js', 'lib/store.js', 'server.js', 'upgossip.json'].map(p => p.normalize('NFC')).sort())
    })

    it('refuses two names that are equal after NFC normalisation (DuplicatePathError)', async () => {
      const dir = await samplePackage(root, '1.0.0', {}, { ['lib/' + 'é'.normalize('NFC') + '.js']: '1', ['lib/' + 'é'.normalize('NFD') + '.js']: '2' })
      expectRefused(await runCli(['pack', dir]), 'DuplicatePathError')
    })

    it('writes a CAR with --out whose root is the package, which verify refuses as not a bundle (NotABundleError)', async () => {
      const car = path.join(root, 'package-only.car')
      const packed = await runCli(['pack', pkg, '--out', car])
      expectOk(packed)
      const cid = oneLine(packed)
      expect((await fs.stat(car)).size).toBeGreaterThan(0)
      const r = await runCli(['verify', car, '--trust', trust.a1])
      expectRefused(r, 'NotABundleError', [cid])
    })
  })

  describe('package refusals', () => {
    it('an unknown manifest key is ManifestInvalidError naming the key', async () => {
      const dir = await samplePackage(root, '1.0.0', { colour: 'blue' })
      const [packed, released] = await Promise.all([
        runCli(['pack', dir]),
        runCli(['release', dir, '--key', keys.a.file, '--out', path.join(root, 'colour.car')])
      ])
      expectRefused(packed, 'ManifestInvalidError', ['"colour"'])
      expectRefused(released, 'ManifestInvalidError', ['"colour"'])
      await expect(fs.stat(path.join(root, 'colour.car'))).rejects.toThrow(/ENOENT/)
    })

    it('a version that is not semver ("1.x") is ManifestInvalidError naming the field', async () => {
      const dir = await samplePackage(root, '1.x')
      expectRefused(await runCli(['pack', dir]), 'ManifestInvalidError', ['version'])
    })

    it('a manifest path leaving the package ("main": "../x.js") is ManifestInvalidError', async () => {
      const dir = await samplePackage(root, '1.0.0', { main: '../x.js' })
      await fs.writeFile(path.join(dir, '..', 'x.js'), 'export {}\n')
      expectRefused(await runCli(['pack', dir]), 'ManifestInvalidError', ['main'])
    })

    it('a symlink pointing outside the package directory is UnsafePathError', async () => {
      const outside = path.join(root, 'outside-secret.txt')
      await fs.writeFile(outside, 'secret\n')
      const relative = await samplePackage(root, '1.0.0')
      await fs.symlink(path.relative(relative, outside), path.join(relative, 'leak.txt'))
      const absolute = await samplePackage(root, '1.0.0')
      await fs.symlink(outside, path.join(absolute, 'lib', 'leak.txt'))
      const [r1, r2] = await Promise.all([runCli(['pack', relative]), runCli(['pack', absolute])])
      expectRefused(r1, 'UnsafePathError', ['leak.txt'])
      expectRefused(r2, 'UnsafePathError', ['leak.txt'])
    })

    it('a main file that is not in the package is ManifestFileMissingError naming it', async () => {
      const dir = await samplePackage(root, '1.0.0', { main: 'missing.js' })
      expectRefused(await runCli(['pack', dir]), 'ManifestFileMissingError', ['missing.js'])
    })
  })

  describe('release, sign, verify, inspect', () => {
    it('release writes a bundle and prints the release id', async () => {
      expect(oneLine(releaseRun)).toMatch(/^bafyrei[a-z2-7]+$/)
      expect((await fs.stat(baseCar)).size).toBeGreaterThan(0)
      const r = await runCli(['verify', baseCar, '--trust', trust.a1])
      expectOk(r)
      expect(oneLine(r)).toContain(baseId)
      expect(r.stderr).toBe('')
    })

    it('verify with a threshold of 2 passes only after a second key co-signs, in place, without changing the id', async () => {
      const car = await copyOf(baseCar, 'cosign-in-place.car')
      expectRefused(await runCli(['verify', car, '--trust', trust.ab2]), 'ThresholdNotMetError')
      const signed = await runCli(['sign', car, '--key', keys.b.file])
      expectOk(signed)
      expect(oneLine(signed)).toBe(baseId)
      const [verified, info] = await Promise.all([runCli(['verify', car, '--trust', trust.ab2]), runCli(['inspect', car, '--json'])])
      expectOk(verified)
      expect(oneLine(verified)).toContain(baseId)
      const parsed = JSON.parse(info.stdout) as { id: string, signers: Array<{ key: string, valid: boolean }> }
      expect(parsed.id).toBe(baseId)
      expect(parsed.signers.map(s => s.key).sort()).toEqual([keys.a.id, keys.b.id].sort())
      expect(parsed.signers.every(s => s.valid)).toBe(true)
    })

    it('sign --out writes the co-signed bundle elsewhere and leaves the original untouched', async () => {
      const original = await copyOf(baseCar, 'cosign-original.car')
      const before = await fs.readFile(original)
      const out = path.join(root, 'cosign-out.car')
      const signed = await runCli(['sign', original, '--key', keys.b.file, '--out', out])
      expectOk(signed)
      expect(oneLine(signed)).toBe(baseId)
      expect((await fs.readFile(original)).equals(before)).toBe(true)
      const [good, stillOne] = await Promise.all([runCli(['verify', out, '--trust', trust.ab2]), runCli(['verify', original, '--trust', trust.ab2])])
      expectOk(good)
      expectRefused(stillOne, 'ThresholdNotMetError')
    })

    it('one key signing twice counts once (ThresholdNotMetError at threshold 2)', async () => {
      const car = await copyOf(baseCar, 'twice.car')
      expectOk(await runCli(['sign', car, '--key', keys.a.file]))
      const twiceAtRelease = path.join(root, 'twice-at-release.car')
      expectOk(await runCli(['release', pkg, '--key', keys.a.file, '--key', keys.a.file, '--out', twiceAtRelease]))
      const [r1, r2] = await Promise.all([runCli(['verify', car, '--trust', trust.ab2]), runCli(['verify', twiceAtRelease, '--trust', trust.ab2])])
      expectRefused(r1, 'ThresholdNotMetError')
      expectRefused(r2, 'ThresholdNotMetError')
    })

    it('a signature by an untrusted key does not count (ThresholdNotMetError)', async () => {
      const car = path.join(root, 'untrusted.car')
      expectOk(await runCli(['release', pkg, '--key', keys.c.file, '--out', car]))
      expectRefused(await runCli(['verify', car, '--trust', trust.a1]), 'ThresholdNotMetError', ['not trusted'])
      // and co-signing with an untrusted key does not lift a threshold of 2
      const cosigned = await copyOf(baseCar, 'cosigned-untrusted.car')
      expectOk(await runCli(['sign', cosigned, '--key', keys.c.file]))
      expectRefused(await runCli(['verify', cosigned, '--trust', trust.ab2]), 'ThresholdNotMetError')
    })

    it('a key trusted only for another app is refused (UntrustedAppError)', async () => {
      expectRefused(await runCli(['verify', baseCar, '--trust', trust.otherApp]), 'UntrustedAppError', ['kv'])
    })

    it('an expired release is refused (ReleaseExpiredError)', async () => {
      const car = path.join(root, 'expired.car')
      expectOk(await runCli(['release', pkg, '--key', keys.a.file, '--expires', '1ms', '--out', car]))
      await new Promise(resolve => setTimeout(resolve, 20))
      expectRefused(await runCli(['verify', car, '--trust', trust.a1]), 'ReleaseExpiredError')
    })

    it('release refuses a zero lifetime (--expires 0ms) as a usage error and writes nothing', async () => {
      const car = path.join(root, 'zero-lifetime.car')
      expectUsage(await runCli(['release', pkg, '--key', keys.a.file, '--expires', '0ms', '--out', car]), ['longer than zero'])
      await expect(fs.stat(car)).rejects.toThrow(/ENOENT/)
    })

    it('inspect prints the record, signers, files and sizes', async () => {
      const r = await runCli(['inspect', baseCar])
      expectOk(r)
      expect(r.stdout).toContain(baseId)
      expect(r.stdout).toMatch(/kv 1\.0\.0/)
      expect(r.stdout).toContain(`${keys.a.id} valid signature`)
      const serverBytes = (await fs.stat(path.join(pkg, 'server.js'))).size
      for (const [rel, bytes] of [['server.js', serverBytes], ['lib/store.js', STORE_JS.length], ['upgossip.json', manifest('1.0.0').length]] as const) {
        expect(r.stdout).toMatch(new RegExp(`\\b${bytes}  ${rel.replace('.', '\\.')}\\n`))
      }
    })

    it('inspect --json prints only JSON with the record, signers and files with their sizes', async () => {
      const r = await runCli(['inspect', baseCar, '--json'])
      expectOk(r)
      const info = JSON.parse(r.stdout) as {
        id: string
        record: { app: string, version: string, package: string, size: number, expires: string, manifest: Record<string, unknown> }
        signers: Array<{ key: string, valid: boolean }>
        files: Array<{ path: string, bytes: number, cid: string }>
      }
      expect(info.id).toBe(baseId)
      expect(info.record.app).toBe('kv')
      expect(info.record.version).toBe('1.0.0')
      expect(info.record.package).toMatch(/^bafy/)
      expect(info.record.manifest).toEqual(JSON.parse(manifest('1.0.0')))
      expect(info.signers).toEqual([{ key: keys.a.id, valid: true }])
      const sizes = Object.fromEntries(info.files.map(f => [f.path, f.bytes]))
      expect(sizes).toEqual({
        'server.js': (await fs.stat(path.join(pkg, 'server.js'))).size,
        'lib/store.js': (await fs.stat(path.join(pkg, 'lib', 'store.js'))).size,
        'upgossip.json': (await fs.stat(path.join(pkg, 'upgossip.json'))).size
      })
      const packed = await runCli(['pack', pkg])
      expect(info.record.package).toBe(oneLine(packed))
    })
  })

  describe('tampered and malformed bundles', () => {
    it('a flipped byte inside a package block is BlockHashMismatchError', async () => {
      const car = path.join(root, 'tampered-block.car')
      await fs.writeFile(car, flipByteInside(await fs.readFile(baseCar), STORE_JS, 7))
      const [verified, inspected] = await Promise.all([runCli(['verify', car, '--trust', trust.a1]), runCli(['inspect', car])])
      expectRefused(verified, 'BlockHashMismatchError')
      expectRefused(inspected, 'BlockHashMismatchError')
    })

    it('a changed version inside the root block is refused (BlockHashMismatchError)', async () => {
      const car = path.join(root, 'tampered-record-bytes.car')
      // dag-cbor text string of 5 bytes: 0x65 "1.0.0" — the record's version, in the root block
      const needle = Buffer.concat([Buffer.from([0x65]), Buffer.from('1.0.0')])
      await fs.writeFile(car, flipByteInside(await fs.readFile(baseCar), needle, 5))
      expectRefused(await runCli(['verify', car, '--trust', trust.a1]), 'BlockHashMismatchError')
    })

    it('a re-encoded record (new version, or a later expiry) that still decodes fails the signatures (ThresholdNotMetError)', async () => {
      const bytes = await fs.readFile(baseCar)
      const newVersion = path.join(root, 'forged-version.car')
      await fs.writeFile(newVersion, await rewriteRoot(bytes, signed => {
        signed.record.version = '1.0.1'
        signed.record.manifest.version = '1.0.1'
      }))
      const laterExpiry = path.join(root, 'forged-expiry.car')
      await fs.writeFile(laterExpiry, await rewriteRoot(bytes, signed => { signed.record.expires = '2999-01-01T00:00:00.000Z' }))
      const [r1, r2, shown] = await Promise.all([
        runCli(['verify', newVersion, '--trust', trust.a1]),
        runCli(['verify', laterExpiry, '--trust', trust.a1]),
        runCli(['inspect', newVersion, '--json'])
      ])
      expectRefused(r1, 'ThresholdNotMetError', ['invalid'])
      expectRefused(r2, 'ThresholdNotMetError', ['invalid'])
      // the forgery did decode: inspect reads it and flags the signature
      expectOk(shown)
      const info = JSON.parse(shown.stdout) as { id: string, record: { version: string }, signers: Array<{ valid: boolean }> }
      expect(info.record.version).toBe('1.0.1')
      expect(info.id).not.toBe(baseId)
      expect(info.signers).toEqual([expect.objectContaining({ valid: false })])
    })

    it('a tampered signature is ThresholdNotMetError', async () => {
      const car = path.join(root, 'tampered-signature.car')
      await fs.writeFile(car, await rewriteRoot(await fs.readFile(baseCar), signed => {
        const sig = signed.signatures[0]?.sig as Uint8Array
        sig[10] = (sig[10] as number) ^ 0x01
      }))
      const [verified, inspected] = await Promise.all([runCli(['verify', car, '--trust', trust.a1]), runCli(['inspect', car])])
      expectRefused(verified, 'ThresholdNotMetError', ['invalid'])
      expectOk(inspected)
      expect(inspected.stdout).toContain(`${keys.a.id} INVALID signature`)
      expect(inspected.stdout).toContain(baseId)
    })

    it('garbage bytes are CarMalformedError', async () => {
      const car = path.join(root, 'garbage.car')
      await fs.writeFile(car, Buffer.from('this is not a CAR archive, just some text\n'.repeat(20)))
      expectRefused(await runCli(['verify', car, '--trust', trust.a1]), 'CarMalformedError')
    })

    it('a truncated bundle is CarMalformedError', async () => {
      const bytes = await fs.readFile(baseCar)
      const short = path.join(root, 'truncated.car')
      await fs.writeFile(short, bytes.subarray(0, bytes.length - 10))
      const header = path.join(root, 'truncated-header.car')
      await fs.writeFile(header, bytes.subarray(0, 20))
      const [r1, r2] = await Promise.all([runCli(['verify', short, '--trust', trust.a1]), runCli(['verify', header, '--trust', trust.a1])])
      expectRefused(r1, 'CarMalformedError', ['truncated'])
      expectRefused(r2, 'CarMalformedError')
    })

    it('a missing input file is InputFileError naming it', async () => {
      const missing = path.join(root, 'no-such-bundle.car')
      const [verified, inspected, signed] = await Promise.all([
        runCli(['verify', missing, '--trust', trust.a1]),
        runCli(['inspect', missing]),
        runCli(['sign', missing, '--key', keys.a.file])
      ])
      for (const r of [verified, inspected, signed]) expectRefused(r, 'InputFileError', [missing])
    })
  })

  describe('usage errors exit 2', () => {
    it('an unknown command', async () => {
      expectUsage(await runCli(['frobnicate']), ['frobnicate'])
    })

    it('an unknown option', async () => {
      expectUsage(await runCli(['pack', pkg, '--frobnicate']), ['--frobnicate'])
      expectUsage(await runCli(['verify', baseCar, '--trust', trust.a1, '--no-such-flag']), ['--no-such-flag'])
    })

    it('a missing required option', async () => {
      const [noTrust, noOut, noBundleOut] = await Promise.all([
        runCli(['verify', baseCar]),
        runCli(['keygen']),
        runCli(['release', pkg, '--key', keys.a.file])
      ])
      expectUsage(noTrust, ['--trust'])
      expectUsage(noOut, ['--out'])
      expectUsage(noBundleOut, ['--out'])
    })

    it('release without --key is a usage error', async () => {
      const out = path.join(root, 'nokey.car')
      expectUsage(await runCli(['release', pkg, '--out', out]), ['--key'])
      await expect(fs.stat(out)).rejects.toThrow(/ENOENT/)
    })

    it('a missing or extra argument', async () => {
      const [pack, verify, extra] = await Promise.all([
        runCli(['pack']),
        runCli(['verify', '--trust', trust.a1]),
        runCli(['inspect', baseCar, baseCar])
      ])
      expectUsage(pack, ['dir'])
      expectUsage(verify, ['bundle'])
      expectUsage(extra)
    })

    it('--passphrase-env naming an unset variable (release and sign)', async () => {
      const env = { UPGOSSIP_TEST_UNSET_VAR: undefined }
      const [released, signed] = await Promise.all([
        runCli(['release', pkg, '--key', encrypted.file, '--passphrase-env', 'UPGOSSIP_TEST_UNSET_VAR', '--out', path.join(root, 'unset.car')], { env }),
        runCli(['sign', baseCar, '--key', encrypted.file, '--passphrase-env', 'UPGOSSIP_TEST_UNSET_VAR'], { env })
      ])
      expectUsage(released, ['UPGOSSIP_TEST_UNSET_VAR'])
      expectUsage(signed, ['UPGOSSIP_TEST_UNSET_VAR'])
    })

    it('a bad --expires duration is a usage error naming the value, and writes nothing', async () => {
      const out = path.join(root, 'bad-expires.car')
      expectUsage(await runCli(['release', pkg, '--key', keys.a.file, '--expires', 'soon', '--out', out]), ['"soon"'])
      await expect(fs.stat(out)).rejects.toThrow(/ENOENT/)
    })

    it('no command at all is a usage error', async () => {
      expectUsage(await runCli([]))
    })
  })

  describe('--help and --version', () => {
    const commands: Record<string, string[]> = {
      init: ['<dir>', '--app', '--json'],
      keygen: ['--out', '--passphrase-env'],
      pack: ['<dir>', '--out', '--json'],
      release: ['<dir>', '--key', '--out', '--previous', '--expires', '--passphrase-env', '--json'],
      sign: ['<bundle>', '--key', '--out', '--passphrase-env', '--json'],
      verify: ['<bundle>', '--trust', '--json'],
      inspect: ['<bundle>', '--json'],
      daemon: ['--data', '--trust', '--replace-trust', '--listen', '--bootstrap', '--install', '--app', '--control', '--policy', '--label', '--app-config', '--network', '--mdns', '--psk', '--metrics', '--config', '--take-over'],
      publish: ['<bundle>', '--data', '--daemon', '--token', '--json'],
      status: ['--data', '--daemon', '--token', '--json'],
      call: ['<json>', '--peer', '--protocol', '--data'],
      backup: ['--data', '--out', '--take-over', '--json'],
      restore: ['[file]', '--in', '--data', '--take-over', '--json'],
      rotate: ['<app>', '--publisher', '--publisher-key', '--threshold', '--key', '--reason', '--sequence', '--in', '--out', '--data', '--daemon', '--token', '--json'],
      testnet: ['--peers', '--scenario', '--keep', '--dir', '--step-timeout', '--json']
    }
    for (const [command, options] of Object.entries(commands)) {
      it(`${command} --help exits 0 and lists its options`, async () => {
        const r = await runCli([command, '--help'])
        expectOk(r)
        expect(r.stdout).toContain(`Usage: upgossip ${command}`)
        for (const option of options) expect(r.stdout).toContain(option)
      })
    }

    it('the program --help lists every command', async () => {
      const r = await runCli(['--help'])
      expectOk(r)
      for (const command of Object.keys(commands)) expect(r.stdout).toContain(command)
    })

    it('--version exits 0 and prints the package version and the build\'s commit', async () => {
      const r = await runCli(['--version'])
      expectOk(r)
      const { version } = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
      expect(oneLine(r)).toMatch(/^\d+\.\d+\.\d+ \(([0-9a-f]{7,}|unknown)\)$/)
      expect(oneLine(r).startsWith(`${version} (`)).toBe(true)
      expect(oneLine(await runCli(['-V']))).toBe(oneLine(r))
    })
  })

  describe('co-signing checks what it signs', () => {
    it('signs with every --key given, in one run', async () => {
      const car = path.join(root, 'two-keys.car')
      await fs.copyFile(baseCar, car)
      expectOk(await runCli(['sign', car, '--key', keys.b.file, '--key', keys.c.file]))
      const info = JSON.parse((await runCli(['inspect', car, '--json'])).stdout) as { signers: Array<{ key: string, valid: boolean }> }
      expect(info.signers.map(s => s.key).sort()).toEqual([keys.a.id, keys.b.id, keys.c.id].sort())
      expect(info.signers.every(s => s.valid)).toBe(true)
    })

    it('refuses to sign an expired release, and leaves the file as it was', async () => {
      const car = path.join(root, 'sign-expired.car')
      expectOk(await runCli(['release', pkg, '--key', keys.a.file, '--expires', '1ms', '--out', car]))
      await new Promise(resolve => setTimeout(resolve, 20))
      const before = await fs.readFile(car)
      expectRefused(await runCli(['sign', car, '--key', keys.b.file]), 'ReleaseExpiredError')
      expect(Buffer.compare(await fs.readFile(car), before)).toBe(0)
    })

    it('refuses to go past the 64 signatures peers accept (SignRefusedError), instead of writing an unreadable bundle', async () => {
      const { MemoryBlockStore } = await import('../../src/store/index.js')
      const { createRelease, generatePublisherKey, writeBundle } = await import('../../src/release/index.js')
      const signers = await Promise.all(Array.from({ length: 64 }, async () => await generatePublisherKey()))
      const store = new MemoryBlockStore()
      const made = await createRelease({ dir: pkg, store, keys: signers })
      const car = path.join(root, 'sigs64.car')
      await fs.writeFile(car, await writeBundle(made.signed, store, made.blocks))
      expectOk(await runCli(['inspect', car]))
      expectRefused(await runCli(['sign', car, '--key', keys.a.file]), 'SignRefusedError', ['64'])
      expectOk(await runCli(['inspect', car]))
    })
  })
})
