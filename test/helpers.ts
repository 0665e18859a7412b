/** Shared by unit and e2e tests: temporary directories and sample packages on real disk. */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir (prefix = 'upgossip-test-'): Promise<string> {
  return await fs.mkdtemp(path.join(os.tmpdir(), prefix))
}

/** Write `files` (path → content) under `dir`, creating directories. */
export async function writeTree (dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, ...rel.split('/'))
    await fs.mkdir(path.dirname(file), { recursive: true })
    await fs.writeFile(file, content)
  }
}

/** A minimal valid manifest for app `kv` at `version`. */
export function manifest (version = '1.0.0', extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ app: 'kv', version, main: 'server.js', protocol: 1, ...extra })
}

/** Write a small valid package directory and return its path. */
export async function samplePackage (root: string, version = '1.0.0', extra: Record<string, unknown> = {}, files: Record<string, string | Uint8Array> = {}): Promise<string> {
  const dir = path.join(root, `pkg-${version}-${Math.random().toString(36).slice(2, 8)}`)
  await writeTree(dir, {
    'upgossip.json': manifest(version, extra),
    // a minimal real app: daemons that install the package run it
    'server.js': `// ${version}\nimport { connect } from 'upgossip/app'\nconst node = await connect()\nnode.serve(async request => ({ version: node.version, echo: request }))\nawait node.ready()\n`,
    'lib/store.js': 'export function get () { return 1 }\n',
    ...files
  })
  return dir
}
