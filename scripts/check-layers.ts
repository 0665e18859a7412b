/**
 * The layer check of `npm run lint`: the imports between the files of `src/` follow the
 * layout of ARCHITECTURE.md ("The module map"), they form no cycle, and no file is over 400 lines.
 *
 *   node scripts/check-layers.ts          # checks src/, exits 1 and names every problem
 *   node scripts/check-layers.ts DIR      # checks another tree laid out like src/
 *
 * What counts as an import: `import … from '…'`, `import '…'`, `export … from '…'` (type-only
 * ones too: a type is a dependency on the folder that defines it) and `import('…')` with a
 * literal path; only relative paths, so packages are not looked at. Layering:
 * - a folder imports only from folders before it in LAYERS (ARCHITECTURE.md, "The module map"), or from
 *   itself; `sdk/` only from `ipc/` (the SDK depends only on the IPC message types);
 * - the top-level files (`clock.ts`, `errors.ts`, …) may be imported by anyone, so they
 *   import only each other; `index.ts`, the package entry, may import anything and nothing
 *   in src/ imports it;
 * - a folder that is not in LAYERS is a problem too: add it there and to ARCHITECTURE.md.
 * Cycles are looked for among the static imports, type-only ones included (a lazy
 * `import()` is left out: it does not run while its importer is being loaded).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'

/** The folders of src/, lowest first: a folder imports only from folders before it. */
export const LAYERS: readonly string[] = [
  'store', 'package', 'release', 'net', 'schedule', 'ipc', 'shim', 'host', 'upgrade',
  'daemon', 'testnet', 'cli', 'sdk'
]

/** Folders that may import only from the folders named (and the top-level files). */
export const ONLY: Readonly<Record<string, readonly string[]>> = { sdk: ['ipc'] }

/** The top-level file that is the package entry point. */
export const ENTRY = 'index.ts'

/** The longest a file of src/ may be, in lines. */
export const MAX_LINES = 400

/** One import of a file of src/. */
export interface ImportRef {
  /** the target, relative to the checked tree, with `/` (`host/index.ts`) */
  target: string
  /** the path as written */
  specifier: string
  line: number
  /** `import('…')`: counted for layering, not for cycles */
  dynamic: boolean
  /** `import type`, `export type`, or every name imported is a type */
  typeOnly: boolean
}

/** What the check found: one sentence per problem, by kind. */
export interface LayerReport {
  files: number
  layers: string[]
  cycles: string[]
  lengths: string[]
}

/** The imports with a relative path in one file's text; `file` is relative to the tree. */
export function parseImports (file: string, text: string): ImportRef[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const found: ImportRef[] = []
  const add = (literal: ts.Node, dynamic: boolean, typeOnly: boolean): void => {
    if (!ts.isStringLiteralLike(literal) || !literal.text.startsWith('.')) return
    const line = source.getLineAndCharacterOfPosition(literal.getStart(source)).line + 1
    found.push({ target: resolveSpecifier(file, literal.text), specifier: literal.text, line, dynamic, typeOnly })
  }
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      add(node.moduleSpecifier, false, isTypeOnlyImport(node))
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier != null) {
      const names = node.exportClause != null && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : null
      add(node.moduleSpecifier, false, node.isTypeOnly || (names != null && names.length > 0 && names.every(n => n.isTypeOnly)))
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] != null) {
      add(node.arguments[0], true, false)
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      // `import('./x.js').X` in a type position
      add(node.argument.literal, false, true)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/** `import type { A }`, or `import { type A, type B }`; not `import './x.js'` (it runs the file). */
function isTypeOnlyImport (node: ts.ImportDeclaration): boolean {
  const clause = node.importClause
  if (clause == null) return false
  if (clause.isTypeOnly) return true
  const bindings = clause.namedBindings
  return clause.name == null && bindings != null && ts.isNamedImports(bindings) &&
    bindings.elements.length > 0 && bindings.elements.every(e => e.isTypeOnly)
}

/** The file a relative specifier names, as a `/`-separated path relative to the tree. */
function resolveSpecifier (from: string, specifier: string): string {
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier))
  if (joined.endsWith('.js')) return joined.slice(0, -3) + '.ts'
  if (joined.endsWith('.mjs')) return joined.slice(0, -4) + '.mts'
  if (/\.[cm]?ts$/.test(joined)) return joined
  return joined + '.ts'
}

/** The folder of src/ a path is in, or null for a top-level file. */
function folderOf (file: string): string | null {
  const slash = file.indexOf('/')
  return slash === -1 ? null : file.slice(0, slash)
}

/** Why `from` may not import `to`, or null when it may. */
function layerProblem (from: string, to: string): string | null {
  const source = folderOf(from)
  const target = folderOf(to)
  if (to.startsWith('../')) return null // outside the tree: not this check's business
  if (to === ENTRY && from !== ENTRY) return `${ENTRY} is the package entry point; nothing in src/ imports it`
  if (source === target) return null
  if (source === null) {
    if (from === ENTRY || target === null) return null
    return `the top-level files are imported by every folder, so they import only each other, not ${target}/`
  }
  if (target === null) return null
  const order = LAYERS.join(' → ')
  const only = ONLY[source]
  if (only != null && !only.includes(target)) {
    return `${source}/ imports only from ${only.map(o => `${o}/`).join(', ')} and the top-level files`
  }
  const i = LAYERS.indexOf(source)
  const j = LAYERS.indexOf(target)
  // a folder not in LAYERS is named once, by checkLayers
  if (i !== -1 && j > i) return `${target}/ comes after ${source}/ in the layout (${order}); a folder imports only from folders before it`
  return null
}

/** Every cycle among the static imports: one per strongly connected set of files, shortest first. */
export function findCycles (graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm, iteratively, so a deep chain of imports cannot overflow the stack
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const components: string[][] = []
  let next = 0
  for (const root of graph.keys()) {
    if (index.has(root)) continue
    const work: Array<{ node: string, edge: number }> = [{ node: root, edge: 0 }]
    index.set(root, next); low.set(root, next); next++
    stack.push(root); onStack.add(root)
    while (work.length > 0) {
      const frame = work[work.length - 1] as { node: string, edge: number }
      const edges = graph.get(frame.node) ?? []
      if (frame.edge < edges.length) {
        const to = edges[frame.edge++] as string
        if (!graph.has(to)) continue
        if (!index.has(to)) {
          index.set(to, next); low.set(to, next); next++
          stack.push(to); onStack.add(to)
          work.push({ node: to, edge: 0 })
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node) as number, index.get(to) as number))
        }
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent != null) low.set(parent.node, Math.min(low.get(parent.node) as number, low.get(frame.node) as number))
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = []
        let member: string
        do {
          member = stack.pop() as string
          onStack.delete(member)
          component.push(member)
        } while (member !== frame.node)
        const selfLoop = component.length === 1 && edges.includes(frame.node)
        if (component.length > 1 || selfLoop) components.push(component.sort())
      }
    }
  }
  return components.map(component => shortestCycle(graph, new Set(component))).sort((a, b) => a.length - b.length)
}

/** The shortest cycle through the first file of a strongly connected set (a breadth-first search). */
function shortestCycle (graph: ReadonlyMap<string, readonly string[]>, members: ReadonlySet<string>): string[] {
  const start = [...members][0] as string
  const cameFrom = new Map<string, string>()
  const queue = [start]
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head] as string
    for (const to of graph.get(node) ?? []) {
      if (!members.has(to)) continue
      if (to === start) {
        const cycle = [start]
        for (let at: string | undefined = node; at !== undefined && at !== start; at = cameFrom.get(at)) cycle.splice(1, 0, at)
        return [...cycle, start]
      }
      if (!cameFrom.has(to)) {
        cameFrom.set(to, node)
        queue.push(to)
      }
    }
  }
  return [start, start]
}

/** The .ts files under a folder, relative to it, with `/`. */
async function listFiles (root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true })
  return entries
    .filter(e => e.isFile() && /\.[cm]?ts$/.test(e.name))
    .map(e => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort()
}

/** Lines of a text, as `wc -l` counts them (a last line without a newline counts too). */
function countLines (text: string): number {
  let lines = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++
  return text.length > 0 && !text.endsWith('\n') ? lines + 1 : lines
}

/** Checks the tree at `root` (src/ or a tree laid out like it). */
export async function checkLayers (root: string): Promise<LayerReport> {
  const files = await listFiles(root)
  const report: LayerReport = { files: files.length, layers: [], cycles: [], lengths: [] }
  const unknown = [...new Set(files.map(folderOf))].filter(f => f !== null && !LAYERS.includes(f))
  for (const folder of unknown) report.layers.push(`src/${folder}/ is not in the layout (${LAYERS.join(' → ')}): add it to LAYERS in scripts/check-layers.ts and to ARCHITECTURE.md`)
  const graph = new Map<string, string[]>()
  // `from → to` edges made only of type-only imports, to say so in a cycle
  const typeEdges = new Set<string>()
  for (const file of files) {
    const text = await fs.readFile(path.join(root, file), 'utf8')
    const lines = countLines(text)
    if (lines > MAX_LINES) report.lengths.push(`src/${file} has ${lines} lines, over ${MAX_LINES}: split it`)
    const imports = parseImports(file, text)
    for (const ref of imports) {
      const problem = layerProblem(file, ref.target)
      if (problem != null) report.layers.push(`src/${file}:${ref.line} imports '${ref.specifier}': ${problem}`)
    }
    const loaded = imports.filter(ref => !ref.dynamic)
    const targets = [...new Set(loaded.map(ref => ref.target))]
    graph.set(file, targets)
    for (const target of targets) {
      if (loaded.every(ref => ref.target !== target || ref.typeOnly)) typeEdges.add(`${file} → ${target}`)
    }
  }
  for (const cycle of findCycles(graph)) {
    const steps = cycle.map((f, i) => i === 0 ? `src/${f}` : `${typeEdges.has(`${cycle[i - 1] as string} → ${f}`) ? '→ (import type)' : '→'} src/${f}`)
    report.cycles.push(`import cycle: ${steps.join(' ')}`)
  }
  return report
}

/** The report as text for a terminal, and whether it is clean. */
export function formatReport (report: LayerReport): { ok: boolean, text: string } {
  const sections: Array<[string, string[]]> = [
    ['imports against the layout', report.layers],
    ['import cycles', report.cycles],
    [`files over ${MAX_LINES} lines`, report.lengths]
  ]
  const problems = sections.reduce((n, [, list]) => n + list.length, 0)
  if (problems === 0) return { ok: true, text: `check-layers: ${report.files} files, layout kept, no cycles, none over ${MAX_LINES} lines\n` }
  let text = `check-layers: ${problems} problem${problems === 1 ? '' : 's'} in ${report.files} files (the layout: ARCHITECTURE.md, "The module map")\n`
  for (const [title, list] of sections) {
    if (list.length === 0) continue
    text += `\n${title} (${list.length}):\n` + list.map(line => `  ${line}\n`).join('')
  }
  if (report.cycles.some(c => c.includes('(import type)'))) {
    text += '\nA type-only import in a cycle counts too: it still ties the files together (move the type to the lower file, or to one both import).\n'
  }
  return { ok: false, text }
}

async function main (argv: string[]): Promise<number> {
  const root = argv[0] ?? path.join(import.meta.dirname, '..', 'src')
  const { ok, text } = formatReport(await checkLayers(root))
  ;(ok ? process.stdout : process.stderr).write(text)
  return ok ? 0 : 1
}

if (process.argv[1] != null && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2))
}
