// Cuts a byte stream into frame bodies. A frame that lies inside one read chunk is handed on as a
// view of that chunk (no copy); a frame that spans chunks is gathered into one Buffer of exactly its
// size, allocated once its length prefix is known. Lengths are checked before anything is allocated.

import { FRAME_LENGTH_BYTES } from './codec.js';
import { TransportError } from './errors.js';

/** Receives each complete frame body (kind byte first), in stream order. */
export interface FrameSink {
  onFrame(body: Buffer): void;
}

export class FrameReader {
  private readonly maxFrameBytes: number;
  private readonly sink: FrameSink;
  /** A length prefix split across chunks. */
  private readonly lengthBytes = Buffer.alloc(FRAME_LENGTH_BYTES);
  private lengthFilled = 0;
  /** A frame body split across chunks, and how much of it has arrived. */
  private partial: Buffer | null = null;
  private partialFilled = 0;
  private stopped = false;

  constructor(options: { maxFrameBytes: number; sink: FrameSink }) {
    this.maxFrameBytes = options.maxFrameBytes;
    this.sink = options.sink;
  }

  /** Stops delivering frames, including the rest of a chunk being processed (the link closed). */
  stop(): void {
    this.stopped = true;
    this.partial = null;
  }

  /**
   * Consumes one chunk, calling sink.onFrame for every frame it completes.
   * Throws TransportError('FrameTooLarge') for a length prefix of 0 or above maxFrameBytes.
   */
  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.stopped) {
      if (this.partial !== null) offset = this.fillPartial(chunk, offset);
      else if (this.lengthFilled > 0 || chunk.length - offset < FRAME_LENGTH_BYTES) {
        offset = this.fillLength(chunk, offset);
      } else offset = this.takeFrame(chunk, offset);
    }
  }

  private checkLength(length: number): number {
    if (length === 0 || length > this.maxFrameBytes) {
      throw new TransportError('FrameTooLarge', `frame length ${length} outside 1..${this.maxFrameBytes}`);
    }
    return length;
  }

  /** The common case: a whole length prefix at `offset`; the body is viewed in place if complete. */
  private takeFrame(chunk: Buffer, offset: number): number {
    const length = this.checkLength(chunk.readUInt32LE(offset));
    const start = offset + FRAME_LENGTH_BYTES;
    if (chunk.length - start >= length) {
      this.sink.onFrame(chunk.subarray(start, start + length));
      return start + length;
    }
    this.startPartial(length);
    return start;
  }

  private fillLength(chunk: Buffer, offset: number): number {
    const take = Math.min(FRAME_LENGTH_BYTES - this.lengthFilled, chunk.length - offset);
    chunk.copy(this.lengthBytes, this.lengthFilled, offset, offset + take);
    this.lengthFilled += take;
    if (this.lengthFilled === FRAME_LENGTH_BYTES) {
      this.lengthFilled = 0;
      this.startPartial(this.checkLength(this.lengthBytes.readUInt32LE(0)));
    }
    return offset + take;
  }

  private startPartial(length: number): void {
    this.partial = Buffer.allocUnsafe(length);
    this.partialFilled = 0;
  }

  private fillPartial(chunk: Buffer, offset: number): number {
    const partial = this.partial!;
    const take = Math.min(partial.length - this.partialFilled, chunk.length - offset);
    chunk.copy(partial, this.partialFilled, offset, offset + take);
    this.partialFilled += take;
    if (this.partialFilled === partial.length) {
      this.partial = null;
      this.sink.onFrame(partial);
    }
    return offset + take;
  }
}
