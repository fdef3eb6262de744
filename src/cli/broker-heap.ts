// The V8 heap of a `raftlog start` process. A node's heap holds little that lives (about 25 MB:
// metadata, indexes, producer state); records live outside it, in buffers and lmdb. After a full
// collection V8 set the next limit near twice the live size, and it started marking again once
// the room left was under the young generation's size: on such a heap, nearly at once. Serving
// fetches, a node ran a full collection every 100 to 150 ms, and its CPU per record served rose
// from about 0.45 µs to 0.65 to 0.85 (docs/benchmarks.md, "Consumer throughput"). A growing
// factor of 4 leaves room for the young generation; the limit stays a few times what lives.

/** V8's heap growing factor for a node, as a percent over 1 (300: the limit is 4 x the live size). */
export const HEAP_GROWING_PERCENT = 300;

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/**
 * The V8 flags to set in a node process, or null when the user chose the growing factor on node's
 * command line (`node --heap-growing-percent=N .../raftlog start`): theirs is kept. Node refuses
 * the flag in NODE_OPTIONS, so the command line is the only place it can come from.
 */
export function brokerHeapFlags(execArgv: readonly string[]): string | null {
  if (execArgv.some((flag) => FLAG.test(flag))) return null;
  return `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}
