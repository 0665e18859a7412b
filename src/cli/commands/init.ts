/**
 * `upgossip init`: a new app package, scaffolded from a template: `testnet/apps/template/`
 * for `--lang node` (an SDK app in the demo app's shape), `testnet/apps/template-python/`
 * for `--lang python` (a process app: a Python program the daemon runs and talks to over
 * HTTP). Each has a manifest, a server, a README, and the next version's transform and
 * simulation-object templates under `next/`.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Option } from 'commander'
import type { Command } from 'commander'
import { UpgossipError } from '../../errors.js'
import { note, say, sayJson } from '../output.js'

/** `init` only writes into a new or empty directory. */
export class DirectoryNotEmptyError extends UpgossipError {
  static override name = 'DirectoryNotEmptyError'
}

/** The app name (from `--app`, or the directory's name) is not one a manifest accepts. */
export class InvalidAppNameError extends UpgossipError {
  static override name = 'InvalidAppNameError'
}

/** The templates, outside dist/ (package.json `files` ships them): the same paths from src/ and dist/. */
export const TEMPLATES = {
  node: fileURLToPath(new URL('../../../testnet/apps/template/', import.meta.url)),
  python: fileURLToPath(new URL('../../../testnet/apps/template-python/', import.meta.url))
} as const

/** A language `init --lang` scaffolds an app in. */
export type InitLanguage = keyof typeof TEMPLATES

/** The SDK template (`--lang node`, the default). */
export const TEMPLATE_DIR = TEMPLATES.node

/** What {@link scaffoldApp} wrote. */
export interface Scaffold {
  dir: string
  app: string
  version: string
  /** Every file written, relative to `dir`, `/`-separated, sorted. */
  files: string[]
}

/** The template's files, relative to `root`, sorted. */
async function templateFiles (root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { withFileTypes: true, recursive: true })
  return entries.filter(e => e.isFile()).map(e => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/')).sort()
}

/**
 * Write a new app package into `dir` (created if missing; refused unless empty). Every
 * `{{app}}` in the template becomes the app's name and every `{{dir}}` the directory's name.
 */
export async function scaffoldApp (dir: string, appName?: string, template = TEMPLATE_DIR): Promise<Scaffold> {
  const { ManifestSchema, NotADirectoryError, parseManifest } = await import('../../package/index.js')
  const target = path.resolve(dir)
  const app = appName ?? path.basename(target)
  const named = ManifestSchema.shape.app.safeParse(app)
  if (!named.success) {
    const from = appName == null ? ` (the name of ${dir}; choose another with --app NAME)` : ''
    throw new InvalidAppNameError(`"${app}" is not a valid app name${from}: ${named.error.issues[0]?.message ?? 'see docs/manifest.md'}`)
  }
  const stat = await fs.stat(target).catch(() => undefined)
  if (stat != null && !stat.isDirectory()) throw new NotADirectoryError(`${dir} exists and is not a directory`)
  if (stat != null) {
    const entries = await fs.readdir(target)
    if (entries.length > 0) throw new DirectoryNotEmptyError(`${dir} is not empty (${entries.length} entries); init writes only into a new or empty directory, so it never overwrites your files`)
  }

  const files = await templateFiles(template)
  const render = (text: string): string => text.replaceAll('{{app}}', app).replaceAll('{{dir}}', path.basename(target))
  await fs.mkdir(target, { recursive: true })
  try {
    for (const file of files) {
      const text = render(await fs.readFile(path.join(template, ...file.split('/')), 'utf8'))
      // a rendered manifest must be valid, or the user's first `pack` would fail
      if (path.posix.basename(file) === 'upgossip.json') parseManifest(JSON.parse(text), `${file} of the template`)
      const out = path.join(target, ...file.split('/'))
      await fs.mkdir(path.dirname(out), { recursive: true })
      await fs.writeFile(out, text, { flag: 'wx' })
    }
  } catch (err) {
    // leave the directory as it was found: empty (it was checked above)
    for (const entry of await fs.readdir(target).catch(() => [])) await fs.rm(path.join(target, entry), { recursive: true, force: true })
    if (stat == null) await fs.rm(target, { recursive: true, force: true })
    throw err
  }
  const manifest = JSON.parse(await fs.readFile(path.join(target, 'upgossip.json'), 'utf8')) as { version: string }
  return { dir: target, app, version: manifest.version, files }
}

/** Register `init`. */
export function initCommand (program: Command): void {
  program.command('init')
    .description('scaffold a new app package: manifest, server, README, and templates of the next version\'s transforms and simulation objects')
    .argument('<dir>', 'the new package directory (created if missing; must be empty)')
    .option('--app <name>', 'the app\'s name (default: the directory\'s name)')
    .addOption(new Option('--lang <lang>', 'node: an app on the upgossip/app SDK; python: a process app, a Python program run over HTTP with no SDK').choices(Object.keys(TEMPLATES)).default('node'))
    .option('--json', 'print JSON')
    .addHelpText('after', '\nThe package is ready to pack and release; DIR/README.md says what comes next.\n\nExamples:\n  $ upgossip init ./myapp\n  $ upgossip release ./myapp --key publisher.key --out myapp-1.0.0.car\n  $ upgossip init ./pyapp --lang python     # docs/process-apps.md')
    .action(async (dir: string, opts: { app?: string, lang: InitLanguage, json?: boolean }) => {
      const made = await scaffoldApp(dir, opts.app, TEMPLATES[opts.lang])
      if (opts.json === true) {
        sayJson(made)
        return
      }
      for (const file of made.files) say(path.join(dir, ...file.split('/')))
      note(`created ${made.app} ${made.version} in ${dir}; next steps: ${path.join(dir, 'README.md')}`)
    })
}
