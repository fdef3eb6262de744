// What one `raftlog tail` run reads, once its flags are checked.

import type { OffsetSpec } from './offset.js';

export interface TailPlan {
  topic: string;
  /** --partition; undefined: every partition (or, with a group, those it assigns). */
  partitions: number[] | undefined;
  spec: OffsetSpec;
  /** Aborted by Ctrl-C (SIGINT) or SIGTERM: how a tail ends. */
  signal: AbortSignal;
}
