import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildInfo, buildString } from '../../src/build-info.js'
import { tempDir } from '../helpers.js'

const ROOT = new URL('../..', import.meta.url).pathname

describe('build info', () => {
  it('is the package version and the commit, as 0.1.0 (1a2b3c4); unbuilt sources say unknown', async () => {
    const { version } = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
    // src/ has no build.json (npm run build writes it into dist/)
    expect(buildInfo()).toEqual({ version, commit: 'unknown' })
    expect(buildString()).toBe(`${version} (unknown)`)
    expect(buildString({ version: '0.1.0', commit: '1a2b3c4' })).toBe('0.1.0 (1a2b3c4)')
  })

  it('the build script writes the checkout\'s short commit, and unknown outside a git checkout of the package', async () => {
    const copy = await tempDir('upgossip-build-info-')
    await fs.mkdir(path.join(copy, 'scripts'))
    await fs.copyFile(path.join(ROOT, 'scripts', 'write-build-info.ts'), path.join(copy, 'scripts', 'write-build-info.ts'))
    const script = path.join(copy, 'scripts', 'write-build-info.ts')
    // a copy outside any repository
    execFileSync(process.execPath, [script])
    expect(JSON.parse(await fs.readFile(path.join(copy, 'dist', 'build.json'), 'utf8'))).toEqual({ commit: 'unknown' })
    // a git checkout of its own: its HEAD, seven hex digits or more
    const git = (...args: string[]): string => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.net', ...args], { cwd: copy, encoding: 'utf8' }).trim()
    git('init', '-q')
    git('add', '.')
    git('commit', '-q', '-m', 'x')
    execFileSync(process.execPath, [script])
    const { commit } = JSON.parse(await fs.readFile(path.join(copy, 'dist', 'build.json'), 'utf8')) as { commit: string }
    expect(commit).toMatch(/^[0-9a-f]{7,}$/)
    expect(git('rev-parse', '--short=7', 'HEAD')).toBe(commit)
    // a package copied into another repository's tree is not that repository's commit
    const inner = path.join(copy, 'vendored')
    await fs.mkdir(path.join(inner, 'scripts'), { recursive: true })
    await fs.copyFile(script, path.join(inner, 'scripts', 'write-build-info.ts'))
    execFileSync(process.execPath, [path.join(inner, 'scripts', 'write-build-info.ts')])
    expect(JSON.parse(await fs.readFile(path.join(inner, 'dist', 'build.json'), 'utf8'))).toEqual({ commit: 'unknown' })
  })
})
