/**
 * Module hooks that let an app process of a unit test run the SDK from src/ rather than
 * dist/: the daemon's side (`AppProcess`, loaded from src/ by vitest) forks the app with
 * `--import src/host/sdk-register.js`, which maps `upgossip/app` to src/sdk/index.js;
 * these hooks, put first through NODE_OPTIONS, read the `.ts` file of every `.js` path
 * under src/ that has none, so the test runs the code of the working tree with no build.
 *
 *   NODE_OPTIONS="--experimental-transform-types --import file:///…/test/unit/sdk-from-source.mjs"
 *
 * (transform, not only strip: the SDK's AppCallError has a parameter property.)
 */
import fs from 'node:fs'
import { register } from 'node:module'
import { isMainThread } from 'node:worker_threads'

const SRC = new URL('../../src/', import.meta.url).href

/** The `.ts` twin of a `.js` URL under src/ that does not exist, else the URL as it is. */
function source (url) {
  return url.startsWith(SRC) && url.endsWith('.js') && !fs.existsSync(new URL(url)) ? url.slice(0, -3) + '.ts' : url
}

/** Node's `resolve` hook: a relative or file: path to a `.js` file of src/ resolves to its `.ts`. */
export async function resolve (specifier, context, nextResolve) {
  if (specifier.endsWith('.js') && (specifier.startsWith('.') || specifier.startsWith('file:')) && context.parentURL != null) {
    const url = source(new URL(specifier, context.parentURL).href)
    if (url.endsWith('.ts')) return { url, shortCircuit: true }
  }
  return await nextResolve(specifier, context)
}

/** Node's `load` hook: a URL another hook resolved to a `.js` file of src/ (`upgossip/app`) loads its `.ts`. */
export async function load (url, context, nextLoad) {
  return await nextLoad(source(url), context)
}

// in the app's main thread: install these hooks (which load this file again, in the hooks' thread)
if (isMainThread) register(import.meta.url)
