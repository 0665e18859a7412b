/**
 * Publisher keys: Ed25519 keys from `@libp2p/crypto`, written to a key file (mode
 * 0600, optionally encrypted with a passphrase: scrypt + AES-256-GCM), and named by
 * their public key in multibase base58btc (`z6Mk…`, the did:key form).
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback } from 'node:crypto'
import fs from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey, PrivateKey, PublicKey } from '@libp2p/interface'
import { base58btc } from 'multiformats/bases/base58'
import { z } from 'zod'
import { UpgossipError } from '../errors.js'
import { describeSchemaIssues, safeParse } from '../schema.js'
import { writeFileAtomic } from '../store/index.js'

/** A key file is unreadable, of the wrong kind, or inconsistent. */
export class KeyFileInvalidError extends UpgossipError {
  static override name = 'KeyFileInvalidError'
}

/** keygen was asked to write over an existing file. */
export class KeyFileExistsError extends UpgossipError {
  static override name = 'KeyFileExistsError'
}

/** The key file is encrypted and no passphrase was given. */
export class PassphraseRequiredError extends UpgossipError {
  static override name = 'PassphraseRequiredError'
}

/** The passphrase does not open the key file. */
export class WrongPassphraseError extends UpgossipError {
  static override name = 'WrongPassphraseError'
}

/** A public key string is not a multibase base58btc Ed25519 key. */
export class InvalidPublicKeyError extends UpgossipError {
  static override name = 'InvalidPublicKeyError'
}

const ED25519_PUB_PREFIX = [0xed, 0x01]
const KEY_FILE_TYPE = 'upgossip-publisher-key'
const SCRYPT = { N: 32768, r: 8, p: 1 } as const
/** Most key-derivation work a key file may ask for: four times what keygen writes. */
const MAX_SCRYPT_WORK = 4 * SCRYPT.N * SCRYPT.r * SCRYPT.p

/** A publisher's key pair with its public name. */
export interface PublisherKey {
  privateKey: Ed25519PrivateKey
  /** The public key as `z6Mk…`. */
  id: string
}

/** The public name of an Ed25519 public key: multibase base58btc of the multicodec-prefixed key. */
export function publicKeyToString (key: PublicKey): string {
  if (key.type !== 'Ed25519') throw new InvalidPublicKeyError(`publisher keys are Ed25519, not ${key.type}`)
  return base58btc.encode(Uint8Array.from([...ED25519_PUB_PREFIX, ...key.raw]))
}

/** Parse a `z6Mk…` public key; throws {@link InvalidPublicKeyError}. */
export function publicKeyFromString (text: string): PublicKey {
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(text)
  } catch {
    throw new InvalidPublicKeyError(`"${text.slice(0, 80)}" is not a multibase base58btc public key (it should start with "z6Mk")`)
  }
  if (bytes.length !== 34 || bytes[0] !== ED25519_PUB_PREFIX[0] || bytes[1] !== ED25519_PUB_PREFIX[1]) {
    throw new InvalidPublicKeyError(`"${text.slice(0, 80)}" is not an Ed25519 public key`)
  }
  try {
    return publicKeyFromRaw(bytes.subarray(2))
  } catch (err) {
    throw new InvalidPublicKeyError(`"${text.slice(0, 80)}" is not a valid Ed25519 public key: ${(err as Error).message}`)
  }
}

/** True when `text` parses as a publisher public key. */
export function isPublicKeyString (text: string): boolean {
  try {
    publicKeyFromString(text)
    return true
  } catch {
    return false
  }
}

/** A new Ed25519 publisher key. */
export async function generatePublisherKey (): Promise<PublisherKey> {
  const privateKey = await generateKeyPair('Ed25519')
  return { privateKey, id: publicKeyToString(privateKey.publicKey) }
}

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/)
const KeyFileSchema = z.strictObject({
  type: z.literal(KEY_FILE_TYPE),
  version: z.literal(1),
  publicKey: z.string(),
  privateKey: b64.optional(),
  encrypted: z.strictObject({
    kdf: z.literal('scrypt'),
    N: z.number().int().min(1024).max(1 << 20),
    r: z.number().int().min(1).max(32),
    p: z.number().int().min(1).max(16),
    salt: b64,
    cipher: z.literal('aes-256-gcm'),
    iv: b64,
    tag: b64,
    ciphertext: b64
  }).refine(e => Number.isInteger(Math.log2(e.N)) && e.N * e.r * e.p <= MAX_SCRYPT_WORK, {
    // each bit more is twice the time: a file asking N=2^20, r=32, p=16 would take minutes to refuse
    message: `scrypt parameters must have N a power of two and N·r·p at most ${MAX_SCRYPT_WORK} (keygen writes N=${SCRYPT.N}, r=${SCRYPT.r}, p=${SCRYPT.p})`
  }).optional()
}).refine(f => (f.privateKey == null) !== (f.encrypted == null), { message: 'a key file holds either "privateKey" or "encrypted"' })

async function scrypt (passphrase: string, salt: Uint8Array, params: { N: number, r: number, p: number }): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scryptCallback(passphrase, salt, 32, { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 }, (err, key) => {
      if (err != null) reject(err)
      else resolve(key)
    })
  })
}

/** The key file's JSON text, encrypted when a passphrase is given. */
export async function encodeKeyFile (key: PublisherKey, passphrase?: string): Promise<string> {
  const raw = privateKeyToProtobuf(key.privateKey)
  if (passphrase == null) {
    return JSON.stringify({ type: KEY_FILE_TYPE, version: 1, publicKey: key.id, privateKey: Buffer.from(raw).toString('base64') }, null, 2) + '\n'
  }
  const salt = randomBytes(16)
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', await scrypt(passphrase, salt, SCRYPT), iv)
  cipher.setAAD(Buffer.from(key.id))
  const ciphertext = Buffer.concat([cipher.update(raw), cipher.final()])
  return JSON.stringify({
    type: KEY_FILE_TYPE,
    version: 1,
    publicKey: key.id,
    encrypted: {
      kdf: 'scrypt',
      ...SCRYPT,
      salt: salt.toString('base64'),
      cipher: 'aes-256-gcm',
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      ciphertext: ciphertext.toString('base64')
    }
  }, null, 2) + '\n'
}

/** Parse a key file's text; throws {@link KeyFileInvalidError}, {@link PassphraseRequiredError} or {@link WrongPassphraseError}. */
export async function decodeKeyFile (text: string, passphrase?: string, where = 'key file'): Promise<PublisherKey> {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new KeyFileInvalidError(`${where} is not a publisher key file (not JSON); make one with "upgossip keygen"`)
  }
  const parsed = safeParse(KeyFileSchema, json)
  if (!parsed.success) throw new KeyFileInvalidError(describeSchemaIssues(where, parsed.error))
  const file = parsed.data
  let raw: Uint8Array
  if (file.encrypted != null) {
    if (passphrase == null) throw new PassphraseRequiredError(`${where} is encrypted; give its passphrase with --passphrase-env VAR`)
    const e = file.encrypted
    try {
      const decipher = createDecipheriv('aes-256-gcm', await scrypt(passphrase, Buffer.from(e.salt, 'base64'), e), Buffer.from(e.iv, 'base64'))
      decipher.setAAD(Buffer.from(file.publicKey))
      decipher.setAuthTag(Buffer.from(e.tag, 'base64'))
      raw = Buffer.concat([decipher.update(Buffer.from(e.ciphertext, 'base64')), decipher.final()])
    } catch {
      throw new WrongPassphraseError(`the passphrase does not open ${where}`)
    }
  } else {
    raw = Buffer.from(file.privateKey ?? '', 'base64')
  }
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(raw)
  } catch (err) {
    throw new KeyFileInvalidError(`${where} holds no readable private key: ${(err as Error).message}`)
  }
  if (privateKey.type !== 'Ed25519') throw new KeyFileInvalidError(`${where} holds a ${privateKey.type} key; publisher keys are Ed25519`)
  const id = publicKeyToString(privateKey.publicKey)
  if (id !== file.publicKey) throw new KeyFileInvalidError(`${where} is inconsistent: its private key does not match its public key ${file.publicKey}`)
  return { privateKey, id }
}

/** Write a key file with mode 0600 (refuses to overwrite an existing file). */
export async function writeKeyFile (file: string, key: PublisherKey, passphrase?: string): Promise<void> {
  if (await fs.stat(file).then(() => true, () => false)) {
    throw new KeyFileExistsError(`${file} already exists; keygen never overwrites a key (choose another --out)`)
  }
  await writeFileAtomic(file, await encodeKeyFile(key, passphrase), { mode: 0o600 })
}

/** Read a key file from disk. */
export async function readKeyFile (file: string, passphrase?: string): Promise<PublisherKey> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    throw new KeyFileInvalidError(`cannot read key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  return await decodeKeyFile(text, passphrase, `key file ${file}`)
}

/**
 * The public key of a key file, for naming a publisher: a plain file is opened and
 * checked whole; of an encrypted one, only the public key it declares is read (no
 * passphrase needed). Throws {@link KeyFileInvalidError}.
 */
export async function readKeyFilePublicKey (file: string): Promise<string> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    throw new KeyFileInvalidError(`cannot read key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    return (await decodeKeyFile(text, undefined, `key file ${file}`)).id
  } catch (err) {
    if (!(err instanceof PassphraseRequiredError)) throw err
  }
  const declared = (KeyFileSchema.parse(JSON.parse(text)) as { publicKey: string }).publicKey
  if (!isPublicKeyString(declared)) throw new KeyFileInvalidError(`key file ${file} declares "${declared.slice(0, 80)}", which is not an Ed25519 public key`)
  return declared
}
