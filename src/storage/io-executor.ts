// Runs I/O tasks off the event loop: a piscina pool in production (small page-cache writes
// excepted, see smallWriteShape, and the fdatasyncs after one or alone, which go to libuv's
// threadpool); in-process for tests that put a fault-injecting file system underneath. Write
// buffers are transferred, except small ones carved from a shared slab, which are copied.

import { fdatasync, writev } from 'node:fs';
import { Piscina } from 'piscina';
import { isSlabBuffer } from './byte-slab.js';
import { dropPrefix, nodeFileSystem, type SyncFileSystem } from './file-system.js';
import {
  type IoStep,
  type IoTask,
  type MultiStepsResult,
  type ReadResult,
  type ReadTask,
  runIoTask,
  runSteps,
  type ScanResult,
  type ScanTask,
  type StepsResult,
  type StepsTask,
} from './io-ops.js';
import type { WalScanResult, WalScanTask } from './wal.js';

/** Where tasks ran, for benchmarks and metrics. */
export interface IoExecutorStats {
  /** Tasks whose writes ran on the calling thread (small page-cache writes). */
  smallWrites: number;
  /** Of those, writes slower than smallWriteStallMs (two within the window: the pool for a while). */
  smallWriteStalls: number;
  /** fdatasyncs after a small write or alone in their task, run on libuv's threadpool, not the pool. */
  threadpoolSyncs: number;
  /** Tasks whose small writes went to libuv's threadpool too (while small writes were off here). */
  threadpoolWrites: number;
}

function emptyIoStats(): IoExecutorStats {
  return { smallWrites: 0, smallWriteStalls: 0, threadpoolSyncs: 0, threadpoolWrites: 0 };
}

export interface IoExecutor {
  readonly stats: IoExecutorStats;
  steps(task: StepsTask): Promise<StepsResult>;
  read(task: ReadTask): Promise<ReadResult>;
  scan(task: ScanTask): Promise<ScanResult>;
  list(directoryPath: string): Promise<string[]>;
  walScan(task: WalScanTask): Promise<WalScanResult>;
  close(): Promise<void>;
}

/**
 * The task as a worker gets it: write buffers of their own are transferred (no copy); a buffer
 * carved from a shared slab is copied first, since transferring the slab would detach every other
 * view of it.
 */
function forWorker(task: StepsTask, transferList: ArrayBuffer[]): StepsTask {
  let steps: IoStep[] | null = null;
  for (let i = 0; i < task.steps.length; i++) {
    const step = task.steps[i]!;
    if (step.kind !== 'write') continue;
    let buffers: Uint8Array[] | null = null;
    for (let j = 0; j < step.buffers.length; j++) {
      const buffer = step.buffers[j]!;
      if (!isSlabBuffer(buffer.buffer)) {
        transferList.push(buffer.buffer as ArrayBuffer);
        continue;
      }
      buffers ??= step.buffers.slice();
      buffers[j] = buffer.slice();
      transferList.push(buffers[j]!.buffer as ArrayBuffer);
    }
    if (buffers === null) continue;
    steps ??= task.steps.slice();
    steps[i] = { ...step, buffers };
  }
  return steps === null ? task : { ...task, steps };
}

/**
 * The worker module next to this one. Built (dist/storage/*.js) it is io-worker.js. Run from the
 * TypeScript sources (vitest, tsx) it is a small .mjs that registers tsx inside the worker first,
 * because worker threads in Node 20 do not inherit the parent's `--import tsx` hooks.
 */
function workerUrl(): string {
  const here = import.meta.url;
  const name = here.endsWith('.ts') ? './io-worker-tsx.mjs' : './io-worker.js';
  return new URL(name, here).href;
}

/** How long small writes go through the pool once two of them stalled the event loop... */
const SMALL_WRITES_OFF_MS = 10_000;
/** ...within this long of each other (a lone stall is more often the process not running). */
export const SMALL_WRITE_STALL_WINDOW_MS_DEFAULT = 1000;
/** Bytes of small writes run on the event loop per turn of it, at most (about 0.1 ms of copying). */
const SMALL_WRITE_BYTES_PER_TURN_MAX = 256 * 1024;

interface PendingSteps {
  task: StepsTask;
  resolve: (result: StepsResult) => void;
  reject: (error: Error) => void;
}

/**
 * The pool. Step lists submitted in one event-loop turn (a driver turn kicks every log it wrote)
 * are sent as at most `threads` combined tasks: one postMessage costs tens of microseconds of
 * event-loop time, so one per log per window would grow with the number of partitions.
 */
export class PoolExecutor implements IoExecutor {
  private readonly pool: Piscina;
  private readonly threads: number;
  private pending: PendingSteps[] = [];
  /** Small writes of this turn, run by one microtask (see writeSoon). */
  private soonWrites: PendingSteps[] = [];
  private flushScheduled = false;
  private readonly smallWriteBytesMax: number;
  private readonly smallWriteStallMs: number;
  private readonly smallWriteStallWindowMs: number;
  /** performance.now() until which small writes go to the pool again (two were slow). */
  private smallWritesOffUntilMs = 0;
  /** performance.now() of the last stalled small write. */
  private lastStallAtMs = Number.NEGATIVE_INFINITY;
  /** Bytes written on the event loop in this turn of it (reset by a setImmediate). */
  private smallWriteBytesThisTurn = 0;
  private turnResetScheduled = false;
  readonly stats: IoExecutorStats = emptyIoStats();

  constructor(options: {
    threads: number;
    smallWriteBytesMax?: number;
    smallWriteStallMs?: number;
    smallWriteStallWindowMs?: number;
  }) {
    this.threads = options.threads;
    this.smallWriteBytesMax = options.smallWriteBytesMax ?? 0;
    this.smallWriteStallMs = options.smallWriteStallMs ?? 5;
    this.smallWriteStallWindowMs = options.smallWriteStallWindowMs ?? SMALL_WRITE_STALL_WINDOW_MS_DEFAULT;
    this.pool = new Piscina({
      filename: workerUrl(),
      minThreads: options.threads,
      maxThreads: options.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      // No inherited loader flags (tsx, vitest): a worker starts several times faster without them,
      // and the source-mode bootstrap registers the one loader it needs itself.
      execArgv: [],
      // Descriptors are opened in one worker and closed in another (or at engine close): a worker
      // must never close "its" descriptors on exit, the numbers may belong to someone else by then.
      trackUnmanagedFds: false,
      recordTiming: false,
    });
  }

  steps(task: StepsTask): Promise<StepsResult> {
    const shape = this.smallWriteShape(task);
    if (shape !== null) {
      const inline = this.takeInlineBudget(shape.bytes);
      if (shape.writes < task.steps.length) return this.writeThenSync(task, shape.writes, inline);
      if (inline) return this.writeSoon(task);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ task, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    });
  }

  /**
   * A task that may skip the pool: positioned writes to open files, of at most smallWriteBytesMax
   * bytes in all, followed by nothing (what a driver turn hands a log in `async` mode, the segment
   * half of a `sync` append) or only by fdatasyncs of open files (a WAL window, a lone sync
   * append); or fdatasyncs of open files alone (async mode's periodic flush, a checkpoint).
   * Returns how many write steps lead and their bytes; null for any other task.
   */
  private smallWriteShape(task: StepsTask): { writes: number; bytes: number } | null {
    if (this.smallWriteBytesMax === 0) return null;
    const steps = task.steps;
    let writes = 0;
    let bytes = 0;
    for (; writes < steps.length; writes++) {
      const step = steps[writes]!;
      if (step.kind !== 'write') break;
      if (step.fd < 0) return null;
      for (const buffer of step.buffers) bytes += buffer.byteLength;
    }
    if (steps.length === 0 || bytes > this.smallWriteBytesMax) return null;
    for (let i = writes; i < steps.length; i++) {
      const step = steps[i]!;
      if (step.kind !== 'sync' || step.fd < 0) return null;
    }
    return { writes, bytes };
  }

  /**
   * Whether `bytes` of small writes may run on the event loop now: not while the stall guard has
   * them off, and within a budget per turn (a driver turn may write to many logs; past the
   * budget, the rest of the turn's writes leave the event loop). Takes the bytes from the budget.
   */
  private takeInlineBudget(bytes: number): boolean {
    if (bytes === 0 || performance.now() < this.smallWritesOffUntilMs) return false;
    if (this.smallWriteBytesThisTurn + bytes > SMALL_WRITE_BYTES_PER_TURN_MAX) return false;
    this.smallWriteBytesThisTurn += bytes;
    if (!this.turnResetScheduled) {
      this.turnResetScheduled = true;
      setImmediate(this.resetTurnBudget);
    }
    return true;
  }

  /** Made once: the write path schedules it every pass of the event loop that writes here. */
  private readonly resetTurnBudget = (): void => {
    this.turnResetScheduled = false;
    this.smallWriteBytesThisTurn = 0;
  };

  /**
   * A microtask later: the turn's WAL window, written in an earlier microtask (WalWriter.append),
   * starts its fdatasync first, and the segment writes that wait for no fdatasync overlap it (a
   * 100 B pwritev costs 20 to 30 µs on this machine).
   */
  private writeSoon(task: StepsTask): Promise<StepsResult> {
    return new Promise((resolve, reject) => {
      this.soonWrites.push({ task, resolve, reject });
      if (this.soonWrites.length > 1) return;
      queueMicrotask(() => {
        const writes = this.soonWrites;
        this.soonWrites = [];
        for (const { task: queued, resolve: done, reject: fail } of writes) {
          try {
            done(this.writeHere(queued.steps));
          } catch (error) {
            fail(error as Error);
          }
        }
      });
    });
  }

  /**
   * The writes, if any, here (`inline`) or on libuv's threadpool (small writes are off here for
   * now), then the fdatasyncs on libuv's threadpool. Why not the pool: a piscina task is a message
   * to a worker's JS event loop and one back; on this machine that hop alone added 0.12x to 0.54x
   * of an fdatasync's own time, libuv's threadpool none that could be measured (docs/storage.md,
   * "An fdatasync after a small write, or alone in its task"). Nothing is reported durable before
   * every fdatasync succeeded.
   */
  private async writeThenSync(task: StepsTask, writeSteps: number, inline: boolean): Promise<StepsResult> {
    const writes = task.steps.slice(0, writeSteps);
    let result: StepsResult = { fds: [], cut: null, syncMs: 0 };
    if (inline) {
      result = this.writeHere(writes);
    } else if (writeSteps > 0) {
      this.stats.threadpoolWrites++;
      for (const step of writes) {
        if (step.kind === 'write') await writeAllOnThreadpool(step.fd, step.buffers, step.position);
      }
    }
    const fds = new Set<number>();
    for (const step of task.steps) if (step.kind === 'sync') fds.add(step.fd);
    const startedMs = performance.now();
    const syncs: Promise<void>[] = [];
    for (const fd of fds) syncs.push(fdatasyncOnThreadpool(fd));
    this.stats.threadpoolSyncs += syncs.length;
    await Promise.all(syncs);
    // Includes the hop back to the event loop: the fsync metric is what a writer waits.
    result.syncMs = performance.now() - startedMs;
    return result;
  }

  /** Runs write steps on this thread; two slow ones within the window turn small writes off a while. */
  private writeHere(steps: readonly IoStep[]): StepsResult {
    const startedMs = performance.now();
    const result = runSteps(nodeFileSystem, steps);
    const endedMs = performance.now();
    this.stats.smallWrites++;
    if (endedMs - startedMs > this.smallWriteStallMs) {
      this.stats.smallWriteStalls++;
      // Dirty-page throttling slows every write while it lasts: the event loop must not keep
      // paying for it, so small writes go through the pool for a while. But a lone slow write is
      // mostly the process not running (preempted on 2 busy cores, or this VM pausing every vCPU
      // 10-30 ms twice a second), and 10 s in the pool then cost a 3-node cluster 30% of its
      // one-connection throughput. So the second stall within the window turns them off.
      if (endedMs - this.lastStallAtMs <= this.smallWriteStallWindowMs) {
        this.smallWritesOffUntilMs = endedMs + SMALL_WRITES_OFF_MS;
      }
      this.lastStallAtMs = endedMs;
    }
    return result;
  }

  private flush(): void {
    this.flushScheduled = false;
    const pending = this.pending;
    this.pending = [];
    // Two tasks share one message: one thread wake-up instead of two (with small writes off, a
    // lone sync-mode append's segment write lands here beside whatever else the turn queued).
    const groups = pending.length <= 2 ? 1 : Math.min(this.threads, pending.length);
    for (let g = 0; g < groups; g++) {
      const group: PendingSteps[] = [];
      for (let i = g; i < pending.length; i += groups) group.push(pending[i]!);
      this.runGroup(group);
    }
  }

  private runGroup(group: PendingSteps[]): void {
    const transferList: ArrayBuffer[] = [];
    const parts = group.map((pending) => forWorker(pending.task, transferList));
    const task = { kind: 'multi', parts };
    (this.pool.run(task, { transferList }) as Promise<MultiStepsResult>).then(
      (results) => {
        for (let i = 0; i < group.length; i++) {
          const result = results[i]!;
          if (result.ok) group[i]!.resolve(result.result);
          else group[i]!.reject(new Error(result.error));
        }
      },
      (error: Error) => {
        for (const pending of group) pending.reject(error);
      },
    );
  }

  read(task: ReadTask): Promise<ReadResult> {
    return this.pool.run(task) as Promise<ReadResult>;
  }

  scan(task: ScanTask): Promise<ScanResult> {
    return this.pool.run(task) as Promise<ScanResult>;
  }

  list(directoryPath: string): Promise<string[]> {
    return this.pool.run({ kind: 'list', path: directoryPath }) as Promise<string[]>;
  }

  walScan(task: WalScanTask): Promise<WalScanResult> {
    return this.pool.run(task) as Promise<WalScanResult>;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/**
 * Runs each task in-process on the given file system, one macrotask later (so callers see the
 * same asynchrony as with the pool). For tests: the fault-injecting file system sits here.
 */
export class InlineExecutor implements IoExecutor {
  readonly stats: IoExecutorStats = emptyIoStats();
  constructor(private readonly fileSystem: SyncFileSystem) {}

  private run<T>(task: IoTask): Promise<T> {
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          resolve(runIoTask(this.fileSystem, task) as T);
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  steps(task: StepsTask): Promise<StepsResult> {
    return this.run(task);
  }

  read(task: ReadTask): Promise<ReadResult> {
    return this.run(task);
  }

  scan(task: ScanTask): Promise<ScanResult> {
    return this.run(task);
  }

  list(directoryPath: string): Promise<string[]> {
    return this.run({ kind: 'list', path: directoryPath });
  }

  walScan(task: WalScanTask): Promise<WalScanResult> {
    return this.run(task);
  }

  async close(): Promise<void> {}
}

function fdatasyncOnThreadpool(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fdatasync(fd, (error) => (error === null ? resolve() : reject(error)));
  });
}

/** Like SyncFileSystem.writeAll, with each writev on libuv's threadpool. */
async function writeAllOnThreadpool(fd: number, buffers: Uint8Array[], position: number): Promise<void> {
  let at = position;
  let pending: readonly Uint8Array[] = buffers;
  for (;;) {
    let total = 0;
    for (const buffer of pending) total += buffer.length;
    if (total === 0) return;
    const written = await new Promise<number>((resolve, reject) => {
      writev(fd, pending as Uint8Array[], at, (error, bytes) =>
        error === null ? resolve(bytes) : reject(error),
      );
    });
    if (written === total) return;
    at += written;
    pending = dropPrefix(pending, written);
  }
}
