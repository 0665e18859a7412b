/**
 * CAR (content-addressed archive) import and export. A read checks the header, that
 * the archive is complete, and every block against its CID.
 */
import { CarReader } from '@ipld/car'
import { CarWriter } from '@ipld/car/writer'
import type { CID } from 'multiformats/cid'
import { MalformedInputError } from '../errors.js'
import { toCid, verifyBlock } from '../store/index.js'
import { MAX_CAR_BYTES } from './limits.js'

/** The bytes are not a readable CAR (garbage, truncated, bad header). */
export class CarMalformedError extends MalformedInputError {
  static override name = 'CarMalformedError'
}

/** A block with its CID. */
export interface Block {
  cid: CID
  bytes: Uint8Array
}

/** A CAR's contents after every block was verified. */
export interface CarContents {
  roots: CID[]
  /** Blocks by CID string, in file order. */
  blocks: Map<string, Block>
}

/** The default archive bound of {@link readCar} (see limits.ts). */
export { MAX_CAR_BYTES }

/** Encode `blocks` as a CAR with the given roots. */
export async function writeCar (roots: CID[], blocks: Iterable<Block> | AsyncIterable<Block>): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create(roots)
  const chunks: Uint8Array[] = []
  const collecting = (async () => {
    for await (const chunk of out) chunks.push(chunk)
  })()
  for await (const block of blocks) await writer.put({ cid: block.cid, bytes: block.bytes })
  await writer.close()
  await collecting
  return Buffer.concat(chunks)
}

/** Read a CAR, verifying every block; throws {@link CarMalformedError} or `BlockHashMismatchError`. */
export async function readCar (bytes: Uint8Array, maxBytes = MAX_CAR_BYTES): Promise<CarContents> {
  if (bytes.byteLength > maxBytes) throw new CarMalformedError(`archive is ${bytes.byteLength} bytes, more than the ${maxBytes}-byte limit`)
  let reader: CarReader
  try {
    reader = await CarReader.fromBytes(bytes)
  } catch (err) {
    const reason = (err as Error).message
    const truncated = /unexpected end|not enough data|truncat/i.test(reason)
    throw new CarMalformedError(truncated ? `not a complete CAR archive: it is truncated, or not a CAR file at all (${reason})` : `not a valid CAR archive (${reason})`)
  }
  if (reader.version !== 1) throw new CarMalformedError(`CAR version ${reader.version} is not supported; expected version 1`)
  const roots = (await reader.getRoots()).map(cid => toCid(cid))
  const blocks = new Map<string, Block>()
  for await (const block of reader.blocks()) {
    const cid = toCid(block.cid)
    await verifyBlock(cid, block.bytes)
    blocks.set(cid.toString(), { cid, bytes: block.bytes })
  }
  return { roots, blocks }
}
