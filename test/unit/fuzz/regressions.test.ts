/**
 * One fixed case for each bug the fuzz properties found: each failed before its fix
 * with a crash, an unnamed error, a 5xx or unbounded work.
 */
import { describe, expect, it } from 'vitest'
import { KeyFileInvalidError, decodeKeyFile } from '../../../src/release/index.js'
import { UnsupportedCidError, toCid } from '../../../src/store/index.js'

describe('bugs found by fuzzing', () => {
  it('toCid: bytes that are not a CID are UnsupportedCidError, not a RangeError', () => {
    expect(() => toCid(new Uint8Array(0))).toThrow(UnsupportedCidError)
    expect(() => toCid({ bytes: Uint8Array.of(0xff, 0xff) })).toThrow(UnsupportedCidError)
  })

  it('key files: scrypt parameters asking for minutes of work are refused unopened', async () => {
    const file = (N: number, r: number, p: number): string => JSON.stringify({
      type: 'upgossip-publisher-key',
      version: 1,
      publicKey: 'z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
      encrypted: { kdf: 'scrypt', N, r, p, salt: 'AAAA', cipher: 'aes-256-gcm', iv: 'AAAA', tag: 'AAAA', ciphertext: 'AAAA' }
    })
    const started = Date.now()
    await expect(decodeKeyFile(file(1 << 20, 32, 16), 'pw')).rejects.toThrow(KeyFileInvalidError)
    await expect(decodeKeyFile(file(3000, 8, 1), 'pw')).rejects.toThrow(/power of two/)
    expect(Date.now() - started).toBeLessThan(1000)
  })
})
