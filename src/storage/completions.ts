// A log's writes waiting to be reported durable (onPersisted), in submission order. A write is
// durable once the log's I/O chain completed the last operation queued for it and, if it changed
// term, vote, membership or the snapshot, once lmdb flushed that too.

import { StorageError } from './errors.js';

interface Pending {
  persistId: number;
  /** The I/O operation whose completion makes this write durable (0: none). */
  ioSeq: number;
  waitingForState: boolean;
}

export interface CompletionHooks {
  /** Every I/O operation up to this sequence number is done. */
  completedSeq(): number;
  /** Resolves once every lmdb write queued so far is flushed. */
  stateDurable(): Promise<unknown>;
  onPersisted: ((persistId: number) => void) | undefined;
  onFailure(error: StorageError): void;
  failed(): boolean;
}

export class Completions {
  private readonly pending: Pending[] = [];
  private head = 0;
  private drainScheduled = false;

  constructor(private readonly hooks: CompletionHooks) {}

  /** A write was submitted: report `persistId` once operation `ioSeq` is done (and its state). */
  track(persistId: number, ioSeq: number, waitForState: boolean): void {
    const pending: Pending = { persistId, ioSeq, waitingForState: waitForState };
    this.pending.push(pending);
    if (waitForState) {
      this.hooks.stateDurable().then(
        () => {
          pending.waitingForState = false;
          this.drain();
        },
        (error: unknown) =>
          this.hooks.onFailure(
            new StorageError('IoFailed', `lmdb flush failed: ${String(error)}`, { cause: error }),
          ),
      );
    } else if (!this.drainScheduled) {
      this.drainScheduled = true;
      queueMicrotask(() => {
        this.drainScheduled = false;
        this.drain();
      });
    }
  }

  /** Reports every write at the head of the queue that is durable now. */
  drain(): void {
    if (this.hooks.failed()) return;
    const doneSeq = this.hooks.completedSeq();
    const onPersisted = this.hooks.onPersisted;
    while (this.head < this.pending.length) {
      const head = this.pending[this.head]!;
      if (head.waitingForState || head.ioSeq > doneSeq) break;
      this.head++;
      onPersisted?.(head.persistId);
    }
    // Emptied (the usual case): forget the drained ones now, or they would outlive young GCs.
    if (this.head === this.pending.length) {
      this.pending.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
  }
}
