// Small byte buffers carved from shared ArrayBuffers: one ArrayBuffer per slab, not one per buffer.
// Every ArrayBuffer owns an off-heap backing store that V8 tracks, and frees with a lock held, in
// each young-generation GC. Two per produced record (its batch and its segment frame) made that the
// largest part of a leader's scavenge pause (docs/storage.md, "Byte slabs").

import { AssertionError, assert } from '../raft/errors.js';

/** The slabs of every ByteSlab: a slab must never be transferred to a worker (see isSlabBuffer). */
const slabBuffers = new WeakSet<ArrayBufferLike>();

/** True if `buffer` is shared by other views: copy what a worker needs, never transfer it. */
export function isSlabBuffer(buffer: ArrayBufferLike): boolean {
  return slabBuffers.has(buffer);
}

export interface ByteSlabOptions {
  /** Size of each shared ArrayBuffer. */
  slabBytes: number;
  /** Buffers of this size or more get an ArrayBuffer of their own (transferable, freed alone). */
  ownBufferBytesMin: number;
}

/**
 * A bump allocator. A slab is never reused: it is freed once no view of it is left, so a buffer
 * that lives long keeps at most one slab alive, and fresh memory is always zeroed.
 * Invariant: used <= slab.byteLength.
 */
export class ByteSlab {
  private readonly slabBytes: number;
  private readonly ownBufferBytesMin: number;
  private slab: ArrayBuffer | null = null;
  private used = 0;

  constructor(options: ByteSlabOptions) {
    assert(options.ownBufferBytesMin > 0, 'ByteSlab: ownBufferBytesMin must be positive');
    assert(options.ownBufferBytesMin <= options.slabBytes, 'ByteSlab: ownBufferBytesMin over slabBytes');
    this.slabBytes = options.slabBytes;
    this.ownBufferBytesMin = options.ownBufferBytesMin;
  }

  /** A zeroed buffer of `bytes` bytes (encoders may rely on the zeroes). */
  take(bytes: number): Uint8Array {
    // Per record: the message is built only on failure.
    if (!Number.isSafeInteger(bytes) || bytes < 0)
      throw new AssertionError(`ByteSlab.take(${bytes}): not a byte count`);
    if (bytes >= this.ownBufferBytesMin) return new Uint8Array(new ArrayBuffer(bytes));
    if (this.slab === null || this.used + bytes > this.slabBytes) {
      this.slab = new ArrayBuffer(this.slabBytes);
      slabBuffers.add(this.slab);
      this.used = 0;
    }
    const view = new Uint8Array(this.slab, this.used, bytes);
    this.used += bytes;
    assert(this.used <= this.slabBytes, 'ByteSlab: carved past the end of a slab');
    return view;
  }
}

/**
 * Entry data that lives as long as the log's cache keeps it: record batches as the leader encodes
 * them, and what the cache copies out of a socket's read chunk. Small slabs, so that one long-lived
 * entry keeps little else alive.
 */
export const entryDataSlab = new ByteSlab({ slabBytes: 16 * 1024, ownBufferBytesMin: 4 * 1024 });
