/**
 * Hostile package DAGs for fuzz properties: UnixFS trees of any shape (files whose sizes
 * lie, directories and sharded directories, symlinks, nodes that are not UnixFS, missing
 * blocks, CIDs of other codecs, hostile names), built block by block into a store.
 */
import * as dagPb from '@ipld/dag-pb'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import type { MemoryBlockStore } from '../../../src/store/index.js'
import { cidArb, nastyStringArb } from './support.js'

/** Codecs of package blocks. */
export const RAW = 0x55
export const DAG_PB = 0x70

/** The protobuf of UnixFS `Data` (fields: 1 type, 2 data, 3 filesize, 4 blocksizes, 5 hashType, 6 fanout). */
function unixfsData (fields: { type: number, data?: Uint8Array, filesize?: number, blocksizes?: number[], hashType?: number, fanout?: number }): Uint8Array {
  const out: number[] = []
  const varint = (n: number): void => { let v = n; while (v >= 0x80) { out.push((v % 0x80) | 0x80); v = Math.floor(v / 0x80) } out.push(v) }
  out.push(0x08); varint(fields.type)
  if (fields.data != null) { out.push(0x12); varint(fields.data.byteLength); out.push(...fields.data) }
  if (fields.filesize != null) { out.push(0x18); varint(fields.filesize) }
  for (const b of fields.blocksizes ?? []) { out.push(0x20); varint(b) }
  if (fields.hashType != null) { out.push(0x28); varint(fields.hashType) }
  if (fields.fanout != null) { out.push(0x30); varint(fields.fanout) }
  return Uint8Array.from(out)
}

/** How one node of a hostile package is made. */
export type NodeSpec =
  | { kind: 'raw', bytes: Uint8Array }
  | { kind: 'file', chunks: Uint8Array[], lie: number }
  | { kind: 'dir', entries: Array<{ name: string, node: NodeSpec }>, shard: boolean }
  | { kind: 'unixfs', type: number, data: Uint8Array }
  | { kind: 'pb-garbage', data: Uint8Array | undefined }
  | { kind: 'missing' }
  | { kind: 'other-codec', cid: CID }

const nameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a.js', 'b', 'lib', 'data.txt', 'upgossip.json', 'server.js') },
  { weight: 1, arbitrary: fc.constantFrom('', '.', '..', 'a/b', '..\\x', 'x\u0000y', 'e\u0301', 'n'.repeat(256)) },
  { weight: 1, arbitrary: nastyStringArb }
)

export const nodeArb: fc.Arbitrary<NodeSpec> = fc.letrec<{ node: NodeSpec }>(tie => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.uint8Array({ maxLength: 40 }).map(bytes => ({ kind: 'raw' as const, bytes })),
    fc.tuple(fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 3 }), fc.integer({ min: -2, max: 2 })).map(([chunks, lie]) => ({ kind: 'file' as const, chunks, lie })),
    fc.tuple(fc.array(fc.record({ name: nameArb, node: tie('node') }), { maxLength: 4 }), fc.boolean()).map(([entries, shard]) => ({ kind: 'dir' as const, entries, shard })),
    fc.tuple(fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 99), fc.uint8Array({ maxLength: 12 })).map(([type, data]) => ({ kind: 'unixfs' as const, type, data })),
    fc.option(fc.uint8Array({ maxLength: 16 }), { nil: undefined }).map(data => ({ kind: 'pb-garbage' as const, data })),
    fc.constant({ kind: 'missing' as const }),
    cidArb.map(cid => ({ kind: 'other-codec' as const, cid }))
  )
})).node

const MANIFEST = new TextEncoder().encode(JSON.stringify({ app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 }))

/** Put the blocks of `spec` into `store`; returns the root CID. */
export async function materialise (spec: NodeSpec, store: MemoryBlockStore): Promise<CID> {
  const put = async (code: number, bytes: Uint8Array): Promise<CID> => {
    const cid = CID.createV1(code, await sha256.digest(bytes))
    await store.put(cid, bytes)
    return cid
  }
  switch (spec.kind) {
    case 'raw': return await put(RAW, spec.bytes)
    case 'file': {
      const links = []
      for (const chunk of spec.chunks) links.push({ Hash: await put(RAW, chunk), Tsize: chunk.byteLength })
      const total = spec.chunks.reduce((n, c) => n + c.byteLength, 0)
      const data = unixfsData({ type: 2, filesize: Math.max(0, total + spec.lie), blocksizes: spec.chunks.map(c => c.byteLength) })
      return await put(DAG_PB, dagPb.encode(dagPb.prepare({ Data: data, Links: links })))
    }
    case 'dir': {
      const links = []
      for (const e of spec.entries) links.push({ Name: spec.shard ? `0${e.name}` : e.name, Hash: await materialise(e.node, store), Tsize: 1 })
      const data = spec.shard ? unixfsData({ type: 5, hashType: 0x22, fanout: 256 }) : unixfsData({ type: 1 })
      return await put(DAG_PB, dagPb.encode(dagPb.prepare({ Data: data, Links: links })))
    }
    case 'unixfs': return await put(DAG_PB, dagPb.encode({ Data: unixfsData({ type: spec.type, data: spec.data }), Links: [] }))
    case 'pb-garbage': return await put(DAG_PB, dagPb.encode(spec.data == null ? { Links: [] } : { Data: spec.data, Links: [] }))
    case 'missing': return CID.createV1(RAW, await sha256.digest(Uint8Array.of(0xde, 0xad)))
    case 'other-codec': return spec.cid
  }
}

/** A package root: usually a directory with a manifest and a main file, plus hostile entries. */
export const packageArb: fc.Arbitrary<NodeSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.array(fc.record({ name: nameArb, node: nodeArb }), { maxLength: 3 }), fc.boolean()).map(([extra, shard]) => ({ kind: 'dir' as const, shard, entries: [{ name: 'upgossip.json', node: { kind: 'raw' as const, bytes: MANIFEST } }, { name: 'server.js', node: { kind: 'raw' as const, bytes: Uint8Array.of(0x2f, 0x2f) } }, ...extra] })) },
  { weight: 1, arbitrary: nodeArb }
)
