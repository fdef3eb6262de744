// The background scrub: segment files that a restart took from their stored index instead of
// reading them are read and verified (every frame's CRC32C) once, in the I/O pool, one file at a
// time and at most `bytesPerSecond` on average, so that a start costs no reading and corruption
// that happened while the node was down is still found. A bad frame fails its log with CorruptLog,
// as an open that found it would have.

import type { Segment } from './segment.js';

/** One log's side of the scrub (PartitionLog implements it). */
export interface ScrubTarget {
  /** Verifies `segment` up to `endPosition`; the bytes read (0 if the file is gone or the log closed). */
  verifySegment(segment: Segment, endPosition: number): Promise<number>;
}

interface ScrubItem {
  target: ScrubTarget;
  segment: Segment;
  endPosition: number;
}

export interface ScrubOptions {
  /** Average read rate; 0 turns the scrub off. */
  bytesPerSecond: number;
  /** Nothing is read before this long after the engine opened (the node is starting). */
  delayMs: number;
}

export class Scrubber {
  private readonly queue: ScrubItem[] = [];
  private head = 0;
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly notBefore: number;
  /** Bytes verified so far (a metric, and a test aid). */
  verifiedBytes = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: ScrubOptions) {
    this.notBefore = Date.now() + options.delayMs;
  }

  add(target: ScrubTarget, segments: readonly { segment: Segment; endPosition: number }[]): void {
    if (this.options.bytesPerSecond <= 0 || this.stopped) return;
    for (const { segment, endPosition } of segments) this.queue.push({ target, segment, endPosition });
    this.schedule(Math.max(0, this.notBefore - Date.now()));
  }

  /** Test aid: resolves once every queued file is verified. */
  idle(): Promise<void> {
    if (this.head === this.queue.length && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.finishIdle();
  }

  private schedule(delayMs: number): void {
    if (this.running || this.timer !== null || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runOne();
    }, delayMs);
    this.timer.unref();
  }

  private async runOne(): Promise<void> {
    const item = this.queue[this.head];
    if (item === undefined || this.stopped) return this.finishIdle();
    this.head++;
    this.running = true;
    let bytes = 0;
    try {
      bytes = await item.target.verifySegment(item.segment, item.endPosition);
    } catch {
      // The log reported what went wrong (onError); the scrub goes on with other logs.
    }
    this.running = false;
    this.verifiedBytes += bytes;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      return this.finishIdle();
    }
    this.schedule((bytes / this.options.bytesPerSecond) * 1000);
  }

  private finishIdle(): void {
    if (this.running) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
