/**
 * Bounds on what a bundle or a package can make upgossip read, walk or unpack. Each is
 * the default of an optional parameter of the function it bounds, so tests can try the
 * edge with a small value; the functions re-export the constant they use.
 */

/** Largest CAR read into memory by default (1 GiB). */
export const MAX_CAR_BYTES = 1024 * 1024 * 1024

/** Upper bound on the blocks of one package, so a hostile DAG cannot make a walk run forever. */
export const MAX_PACKAGE_BLOCKS = 1_000_000

/** Most entries (files and directories, the root not counted) in one package. */
export const MAX_PACKAGE_FILES = 100_000
