/**
 * Module resolve hook for app processes: `upgossip/app` resolves to the daemon's own
 * SDK, so packages do not bundle it and always speak the daemon's IPC protocol.
 */
const SDK_URL = new URL('../sdk/index.js', import.meta.url).href

interface ResolveContext { parentURL?: string }
type NextResolve = (specifier: string, context: ResolveContext) => Promise<{ url: string }>

/** Node's `resolve` hook. */
export async function resolve (specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<{ url: string, shortCircuit?: boolean }> {
  if (specifier === 'upgossip/app') return { url: SDK_URL, shortCircuit: true }
  return await nextResolve(specifier, context)
}
