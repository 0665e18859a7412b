import fs from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { PskInvalidError, PskPermissionsError, readPsk } from '../../src/net/index.js'
import { restrictDataDir, setWritable } from '../../src/store/index.js'
import { tempDir } from '../helpers.js'

const mode = async (file: string): Promise<number> => (await fs.stat(file)).mode & 0o777

async function pskFile (mode: number, content = `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`): Promise<string> {
  const file = path.join(await tempDir(), 'swarm.key')
  await fs.writeFile(file, content)
  await fs.chmod(file, mode)
  return file
}

describe('permissions: the data directory', () => {
  it('a directory open to its group or others is set to 0700, and says what it was', async () => {
    for (const loose of [0o755, 0o750, 0o701, 0o777]) {
      const dir = await tempDir()
      await fs.chmod(dir, loose)
      expect(await restrictDataDir(dir)).toEqual({ mode: 0o700, from: loose })
      expect(await mode(dir)).toBe(0o700)
    }
  })

  it('a private directory is left as it is', async () => {
    for (const tight of [0o700, 0o500]) {
      const dir = await tempDir()
      await fs.chmod(dir, tight)
      expect(await restrictDataDir(dir)).toEqual({ mode: tight })
      expect(await mode(dir)).toBe(tight)
      await fs.chmod(dir, 0o700)
    }
  })

  it('a snapshot made read-only, and writable again, gives nothing to others', async () => {
    const dir = await tempDir()
    await fs.mkdir(path.join(dir, 'sub'))
    await fs.writeFile(path.join(dir, 'sub', 'f'), 'x')
    await setWritable(dir, false)
    expect([await mode(dir), await mode(path.join(dir, 'sub')), await mode(path.join(dir, 'sub', 'f'))]).toEqual([0o500, 0o500, 0o400])
    await setWritable(dir, true)
    expect([await mode(dir), await mode(path.join(dir, 'sub')), await mode(path.join(dir, 'sub', 'f'))]).toEqual([0o700, 0o700, 0o600])
  })
})

describe('permissions: the --psk key file', () => {
  it('is read when only its owner may read it', async () => {
    for (const m of [0o600, 0o400]) expect((await readPsk(await pskFile(m))).byteLength).toBeGreaterThan(64)
  })

  it('is refused, naming the file and the fix, when its group or others have any permission on it', async () => {
    for (const m of [0o644, 0o640, 0o604, 0o660, 0o602]) {
      const file = await pskFile(m)
      const err = await readPsk(file).catch((e: unknown) => e)
      expect(err, m.toString(8)).toBeInstanceOf(PskPermissionsError)
      expect((err as Error).message).toBe(`private-network key ${file} is open to other users (mode 0${m.toString(8)}); it must be readable by its owner only: chmod 600 ${file}`)
    }
  })

  it('the mode is checked before the content: a private file that is no key is PskInvalidError', async () => {
    await expect(readPsk(await pskFile(0o600, 'hello'))).rejects.toThrow(PskInvalidError)
    await expect(readPsk(await pskFile(0o644, 'hello'))).rejects.toThrow(PskPermissionsError)
  })
})
