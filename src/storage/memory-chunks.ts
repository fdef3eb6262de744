// Where a memory-mode log keeps its entries' data: copied into chunks (one ArrayBuffer each, of at
// most chunkBytesMax unless a single entry is larger), oldest first. Retention drops whole chunks,
// as it deletes whole segment files on disk, and each chunk is counted at its full size in the
// node's MemoryAccount, which the broker holds against its bound on memory-topic data.

import { AssertionError, assert } from '../raft/errors.js';
import { TIMESTAMP_NONE } from './frame.js';

/** A log's first chunk; each next one is twice the size, up to chunkBytesMax. */
export const MEMORY_CHUNK_BYTES_MIN = 4 * 1024;
/**
 * Chunks of 1 MiB: retention keeps between retentionBytes and retentionBytes plus about one chunk,
 * and one ArrayBuffer per MiB is too few to cost the GC anything.
 */
export const MEMORY_CHUNK_BYTES_MAX_DEFAULT = 1024 * 1024;
/**
 * Counted per entry besides its data: the entry cache's seven array slots of 8 bytes (buffer,
 * offset, length, term, type, base offset, offset end) and the slack of the arrays' growth.
 */
export const MEMORY_ENTRY_BOOKKEEPING_BYTES = 64;

/** What the memory-mode logs of one node hold. */
export class MemoryAccount {
  /** Invariant: the sum of heldBytes over the node's open memory-mode logs. */
  bytes = 0;
}

/** What appending planned entries would do to a log's chunks (see planAppend). */
export interface MemoryAppendPlan {
  /** What the planned entries add to heldBytes, all together. */
  addedBytes: number;
  /** Room left after them in the chunk the last one goes to. */
  roomBytes: number;
  /** The size of the next chunk to open. */
  nextChunkBytes: number;
}

export interface ChunkSummary {
  baseIndex: number;
  lastIndex: number;
  /**
   * Bytes of entry data filled, plus the entries' bookkeeping: what retention by size counts, as
   * it counts the bytes written to a segment file.
   */
  sizeBytes: number;
  /** The chunk's whole size plus the entries' bookkeeping: what dropping it frees. */
  heldBytes: number;
}

interface Chunk {
  buffer: ArrayBuffer;
  baseIndex: number;
  /** baseIndex - 1 while empty. */
  lastIndex: number;
  usedBytes: number;
  /**
   * Takes no more entries: it was full, or a cut ended it. Bytes past a cut are never written
   * again: entries read before the cut may still be views of them.
   */
  sealed: boolean;
  /**
   * The time index: the largest record timestamp of its entries (TIMESTAMP_NONE: none). A cut
   * leaves it as it was: too high is safe (a lookup reads on), too low never happens.
   */
  maxTimestampMs: number;
}

/**
 * The chunks of one log, oldest first, covering its entries [first chunk's base, last index] with
 * no gap. Invariant: heldBytes = sum of chunk sizes + entries held * MEMORY_ENTRY_BOOKKEEPING_BYTES,
 * and the account holds heldBytes for this log.
 */
export class MemoryChunks {
  private readonly chunks: Chunk[] = [];
  private readonly account: MemoryAccount;
  private readonly chunkBytesMax: number;
  private nextChunkBytes = MEMORY_CHUNK_BYTES_MIN;
  private heldBytesValue = 0;

  constructor(options: { account: MemoryAccount; chunkBytesMax: number }) {
    assert(
      options.chunkBytesMax >= MEMORY_CHUNK_BYTES_MIN,
      `chunkBytesMax ${options.chunkBytesMax} too small`,
    );
    this.account = options.account;
    this.chunkBytesMax = options.chunkBytesMax;
  }

  /** Bytes this log holds: its chunks at their full size, and its entries' bookkeeping. */
  get heldBytes(): number {
    return this.heldBytesValue;
  }

  get chunkCount(): number {
    return this.chunks.length;
  }

  /**
   * Copies the data of entry `index` (the next one) into the last chunk, or a new one;
   * `maxTimestampMs` is the entry's largest record timestamp (see RecordRange).
   */
  copy(index: number, data: Uint8Array, maxTimestampMs: number = TIMESTAMP_NONE): Uint8Array {
    let chunk = this.chunks.length > 0 ? this.chunks[this.chunks.length - 1]! : null;
    // Per entry: the message is built only on failure.
    if (chunk !== null && index !== chunk.lastIndex + 1)
      throw new AssertionError(`memory chunks: entry ${index} after ${chunk.lastIndex}`);
    if (chunk === null || chunk.sealed || chunk.usedBytes + data.length > chunk.buffer.byteLength) {
      if (chunk !== null) chunk.sealed = true;
      chunk = this.newChunk(index, data.length);
    }
    const view = new Uint8Array(chunk.buffer, chunk.usedBytes, data.length);
    view.set(data);
    chunk.usedBytes += data.length;
    chunk.lastIndex = index;
    if (maxTimestampMs > chunk.maxTimestampMs) chunk.maxTimestampMs = maxTimestampMs;
    this.add(MEMORY_ENTRY_BOOKKEEPING_BYTES);
    return view;
  }

  /**
   * What appending an entry of `dataBytes` after those planned in `after` (null: none) would add
   * to heldBytes: its bookkeeping, and the size of a new chunk if it does not fit in the last one
   * (data in a chunk already counted is free). Changes nothing.
   */
  planAppend(dataBytes: number, after: MemoryAppendPlan | null): MemoryAppendPlan {
    const last = this.chunks.length > 0 ? this.chunks[this.chunks.length - 1]! : null;
    const roomBytes =
      after?.roomBytes ?? (last === null || last.sealed ? 0 : last.buffer.byteLength - last.usedBytes);
    const nextChunkBytes = after?.nextChunkBytes ?? this.nextChunkBytes;
    const addedBytes = (after?.addedBytes ?? 0) + MEMORY_ENTRY_BOOKKEEPING_BYTES;
    if (dataBytes <= roomBytes) return { addedBytes, roomBytes: roomBytes - dataBytes, nextChunkBytes };
    // A chunk of its own, full at once.
    if (dataBytes > this.chunkBytesMax)
      return { addedBytes: addedBytes + dataBytes, roomBytes: 0, nextChunkBytes };
    const size = Math.max(nextChunkBytes, dataBytes);
    return {
      addedBytes: addedBytes + size,
      roomBytes: size - dataBytes,
      nextChunkBytes: Math.min(this.chunkBytesMax, nextChunkBytes * 2),
    };
  }

  private newChunk(baseIndex: number, entryBytes: number): Chunk {
    // An entry larger than the maximum gets a chunk of its own size.
    let size = entryBytes;
    if (entryBytes <= this.chunkBytesMax) {
      size = Math.max(this.nextChunkBytes, entryBytes);
      this.nextChunkBytes = Math.min(this.chunkBytesMax, this.nextChunkBytes * 2);
    }
    const chunk: Chunk = {
      buffer: new ArrayBuffer(size),
      baseIndex,
      lastIndex: baseIndex - 1,
      usedBytes: 0,
      sealed: false,
      maxTimestampMs: TIMESTAMP_NONE,
    };
    this.chunks.push(chunk);
    this.add(size);
    return chunk;
  }

  /**
   * A suffix cut: entries at and after `index` go; the chunk holding `index` is sealed, filled up
   * to `dataOffset`, where the data of entry `index` began in it.
   */
  truncateFrom(index: number, dataOffset: number): void {
    while (this.chunks.length > 0 && this.chunks[this.chunks.length - 1]!.baseIndex >= index) {
      this.release(this.chunks.pop()!);
    }
    const last = this.chunks.length > 0 ? this.chunks[this.chunks.length - 1]! : null;
    if (last === null || last.lastIndex < index) return;
    this.add(-(last.lastIndex - index + 1) * MEMORY_ENTRY_BOOKKEEPING_BYTES);
    last.lastIndex = index - 1;
    last.usedBytes = dataOffset;
    last.sealed = true;
  }

  /** A prefix cut: chunks wholly below `index` go (a chunk holding `index` stays whole). */
  dropBelow(index: number): void {
    let drop = 0;
    while (drop < this.chunks.length && this.chunks[drop]!.lastIndex < index) {
      this.release(this.chunks[drop]!);
      drop++;
    }
    if (drop > 0) this.chunks.splice(0, drop);
  }

  /** Drops every chunk (a snapshot replaced the log, or the log closes). */
  clear(): void {
    for (const chunk of this.chunks) this.release(chunk);
    this.chunks.length = 0;
    assert(this.heldBytesValue === 0, `memory chunks: ${this.heldBytesValue} bytes held after clear`);
  }

  /**
   * The time index: the first index of the first chunk whose entries may hold a record at or
   * after `timestampMs` (every entry before it is earlier), or null when none may.
   */
  firstIndexForTime(timestampMs: number): number | null {
    for (const chunk of this.chunks) {
      if (chunk.lastIndex >= chunk.baseIndex && chunk.maxTimestampMs >= timestampMs) return chunk.baseIndex;
    }
    return null;
  }

  /** The chunks holding entries at or after `firstIndex`, oldest first; the last one is open. */
  summaries(firstIndex: number): ChunkSummary[] {
    const out: ChunkSummary[] = [];
    for (const chunk of this.chunks) {
      if (chunk.lastIndex < Math.max(chunk.baseIndex, firstIndex)) continue;
      out.push({
        baseIndex: Math.max(chunk.baseIndex, firstIndex),
        lastIndex: chunk.lastIndex,
        sizeBytes: chunk.usedBytes + entryCount(chunk) * MEMORY_ENTRY_BOOKKEEPING_BYTES,
        heldBytes: chunkHeldBytes(chunk),
      });
    }
    return out;
  }

  private release(chunk: Chunk): void {
    this.add(-chunkHeldBytes(chunk));
  }

  private add(bytes: number): void {
    this.heldBytesValue += bytes;
    this.account.bytes += bytes;
  }
}

function entryCount(chunk: Chunk): number {
  return chunk.lastIndex - chunk.baseIndex + 1;
}

function chunkHeldBytes(chunk: Chunk): number {
  return chunk.buffer.byteLength + entryCount(chunk) * MEMORY_ENTRY_BOOKKEEPING_BYTES;
}
