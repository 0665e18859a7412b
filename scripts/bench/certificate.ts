/**
 * A self-signed TLS certificate for `localhost` / 127.0.0.1, made at run time for the
 * HTTPS origin baseline: with `openssl` when it is on the PATH, otherwise with node's
 * crypto and a small DER encoder (P-256, ECDSA-SHA256, subjectAltName).
 *
 * @example
 * ```ts
 * const { cert, key, how } = await makeCertificate()
 * https.createServer({ cert, key }, handler)
 * ```
 */
import { execFile } from 'node:child_process'
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

/** A certificate and its key, PEM. */
export interface Certificate {
  cert: string
  key: string
  /** `openssl` or `node:crypto`. */
  how: string
}

async function withOpenssl (): Promise<Certificate | undefined> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upgossip-bench-cert-'))
  try {
    const keyFile = path.join(dir, 'key.pem')
    const certFile = path.join(dir, 'cert.pem')
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile,
      '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { timeout: 20_000 })
    return { cert: await fs.readFile(certFile, 'utf8'), key: await fs.readFile(keyFile, 'utf8'), how: 'openssl' }
  } catch {
    return undefined
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
}

// -- a minimal DER encoder: just what one self-signed certificate needs ---------------

function length (n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

function tlv (tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content)
  return Buffer.concat([Buffer.from([tag]), length(body.length), body])
}

function oid (text: string): Buffer {
  const parts = text.split('.').map(Number)
  const bytes = [40 * (parts[0] as number) + (parts[1] as number)]
  for (const p of parts.slice(2)) {
    const chunk = [p & 0x7f]
    for (let v = p >> 7; v > 0; v >>= 7) chunk.unshift(0x80 | (v & 0x7f))
    bytes.push(...chunk)
  }
  return tlv(0x06, Buffer.from(bytes))
}

function utcTime (date: Date): Buffer {
  const s = date.toISOString()
  return tlv(0x17, Buffer.from(`${s.slice(2, 4)}${s.slice(5, 7)}${s.slice(8, 10)}${s.slice(11, 13)}${s.slice(14, 16)}${s.slice(17, 19)}Z`, 'ascii'))
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c)

/** A self-signed P-256 certificate for localhost and 127.0.0.1, valid for two days. */
export function certificateWithNodeCrypto (now = new Date()): Certificate {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'))
  const name = seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('localhost')))))
  const serial = randomBytes(8)
  serial[0] = (serial[0] as number) & 0x7f
  const san = seq(tlv(0x82, Buffer.from('localhost')), tlv(0x87, Buffer.from([127, 0, 0, 1])))
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    ecdsaSha256,
    name,
    seq(utcTime(new Date(now.getTime() - 3600_000)), utcTime(new Date(now.getTime() + 2 * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(seq(oid('2.5.29.17'), tlv(0x04, san))))
  )
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' })
  const der = seq(tbs, ecdsaSha256, tlv(0x03, Buffer.from([0]), signature))
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----\n`
  return { cert: pem, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), how: 'node:crypto' }
}

/** A certificate made with openssl if available, else with node's crypto. */
export async function makeCertificate (): Promise<Certificate> {
  return await withOpenssl() ?? certificateWithNodeCrypto()
}
