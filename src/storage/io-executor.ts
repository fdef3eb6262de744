// Where a task of file I/O runs. Two routes, chosen by chooseRoute: HERE, a small write to an
// open file copied into the page cache on the event loop (then its fdatasyncs, if any, on libuv's
// threadpool); or the POOL, a worker thread that runs the whole task. Below the routing sits an
// IoBackend: node:fs and a piscina pool in production; in tests, a fault-injecting file system
// run in-process, under the very same routing. Write buffers bound for a worker are transferred,
// except small ones carved from a shared slab, which are copied.

import { fdatasync } from 'node:fs';
import { Piscina } from 'piscina';
import { isSlabBuffer } from './byte-slab.js';
import { nodeFileSystem, type SyncFileSystem } from './file-system.js';
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
  /** Tasks whose writes ran on the event loop (the HERE route). */
  smallWrites: number;
  /** Of those, writes slower than smallWriteStallMs: the event loop waited on the disk. */
  smallWriteStalls: number;
  /** fdatasyncs of the HERE route, run on libuv's threadpool. */
  threadpoolSyncs: number;
  /** Always 0: writes no longer go to libuv's threadpool (kept for the metrics surface). */
  threadpoolWrites: number;
  /** Step lists that took the POOL route. */
  poolTasks: number;
}

function emptyIoStats(): IoExecutorStats {
  return { smallWrites: 0, smallWriteStalls: 0, threadpoolSyncs: 0, threadpoolWrites: 0, poolTasks: 0 };
}

/** What the routing runs on. */
export interface IoBackend {
  /** The file system of the HERE route's writes. */
  readonly fileSystem: SyncFileSystem;
  /** fdatasync off the event loop. */
  syncData(fd: number): Promise<void>;
  /** Runs a task on a worker (buffers in transferList may be moved there). */
  runInPool(task: IoTask, transferList: ArrayBuffer[]): Promise<unknown>;
  close(): Promise<void>;
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

/** Production: node:fs, fdatasync on libuv's threadpool, a piscina pool of `threads` workers. */
export function nodeBackend(threads: number): IoBackend {
  const pool = new Piscina({
    filename: workerUrl(),
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Number.POSITIVE_INFINITY,
    // No inherited loader flags (tsx, vitest): a worker starts several times faster without them,
    // and the source-mode bootstrap registers the one loader it needs itself.
    execArgv: [],
    // Descriptors are opened in one worker and closed in another (or at engine close): a worker
    // must never close "its" descriptors on exit, the numbers may belong to someone else by then.
    trackUnmanagedFds: false,
    recordTiming: false,
  });
  return {
    fileSystem: nodeFileSystem,
    syncData: (fd) =>
      new Promise((resolve, reject) => {
        fdatasync(fd, (error) => (error === null ? resolve() : reject(error)));
      }),
    runInPool: (task, transferList) => pool.run(task, { transferList }),
    close: () => pool.destroy(),
  };
}

/**
 * Tests: every task runs in-process on `fileSystem` (a fault-injecting layer), one macrotask
 * later, as a worker's answer would come; the routing above it is production's.
 */
export function inProcessBackend(fileSystem: SyncFileSystem): IoBackend {
  const later = <T>(run: () => T): Promise<T> =>
    new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          resolve(run());
        } catch (error) {
          reject(error);
        }
      });
    });
  return {
    fileSystem,
    syncData: (fd) => later(() => fileSystem.syncData(fd)),
    runInPool: (task) => later(() => runIoTask(fileSystem, task)),
    close: async () => {},
  };
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

/** Bytes of HERE writes per turn of the event loop, at most (about 0.1 ms of copying). */
const HERE_BYTES_PER_TURN_MAX = 256 * 1024;

export type Route = { route: 'here'; writeSteps: number; bytes: number } | { route: 'pool' };

/**
 * THE routing decision. HERE: positioned writes to files already open, at most
 * `smallWriteBytesMax` bytes in all and within what is left of this turn's budget, followed by
 * nothing or only by fdatasyncs of open files (an async-mode append, a sync-mode append's segment
 * write, a WAL window); or fdatasyncs of open files alone (async mode's flush, a checkpoint).
 * POOL: anything else (an open, a cut, a truncate, a large write, a read).
 *
 * Why HERE: a write into the page cache costs a few microseconds of CPU on the event loop,
 * against two thread wake-ups and 80 to 140 µs of CPU through a worker; an fdatasync waits on the
 * device, so it never runs on the event loop, and libuv's threadpool adds no hop that could be
 * measured where the pool added 0.12x to 0.54x of its time (docs/storage.md, "Writing").
 */
export function chooseRoute(
  task: StepsTask,
  limits: { smallWriteBytesMax: number; turnBytesLeft: number },
): Route {
  const steps = task.steps;
  if (limits.smallWriteBytesMax === 0 || steps.length === 0) return { route: 'pool' };
  let writeSteps = 0;
  let bytes = 0;
  for (; writeSteps < steps.length; writeSteps++) {
    const step = steps[writeSteps]!;
    if (step.kind !== 'write') break;
    if (step.fd < 0) return { route: 'pool' };
    for (const buffer of step.buffers) bytes += buffer.byteLength;
  }
  if (bytes > limits.smallWriteBytesMax || bytes > limits.turnBytesLeft) return { route: 'pool' };
  for (let i = writeSteps; i < steps.length; i++) {
    const step = steps[i]!;
    if (step.kind !== 'sync' || step.fd < 0) return { route: 'pool' };
  }
  return { route: 'here', writeSteps, bytes };
}

interface PendingSteps {
  task: StepsTask;
  resolve: (result: StepsResult) => void;
  reject: (error: Error) => void;
}

export interface IoExecutorOptions {
  /** Worker threads: step lists of one turn go out as at most this many messages. */
  threads: number;
  /** HERE writes are at most this many bytes per task (0: every task goes to the pool). */
  smallWriteBytesMax?: number;
  /** A HERE write slower than this (ms) is counted as a stall (a metric: the loop waited). */
  smallWriteStallMs?: number;
}

export class IoExecutor {
  private readonly backend: IoBackend;
  private readonly threads: number;
  private readonly smallWriteBytesMax: number;
  private readonly smallWriteStallMs: number;
  private pending: PendingSteps[] = [];
  /** Write-only HERE tasks of this turn, run by one microtask (see writeSoon). */
  private soonWrites: PendingSteps[] = [];
  private flushScheduled = false;
  /** Bytes written HERE in this turn of the event loop (reset by a setImmediate). */
  private hereBytesThisTurn = 0;
  private turnResetScheduled = false;
  readonly stats: IoExecutorStats = emptyIoStats();

  constructor(backend: IoBackend, options: IoExecutorOptions) {
    this.backend = backend;
    this.threads = options.threads;
    this.smallWriteBytesMax = options.smallWriteBytesMax ?? 0;
    this.smallWriteStallMs = options.smallWriteStallMs ?? 5;
  }

  steps(task: StepsTask): Promise<StepsResult> {
    const route = chooseRoute(task, {
      smallWriteBytesMax: this.smallWriteBytesMax,
      turnBytesLeft: HERE_BYTES_PER_TURN_MAX - this.hereBytesThisTurn,
    });
    if (route.route === 'here') {
      this.takeTurnBytes(route.bytes);
      if (route.writeSteps === task.steps.length) return this.writeSoon(task);
      return this.writeThenSync(task, route.writeSteps);
    }
    this.stats.poolTasks++;
    return new Promise((resolve, reject) => {
      this.pending.push({ task, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    });
  }

  private takeTurnBytes(bytes: number): void {
    if (bytes === 0) return;
    this.hereBytesThisTurn += bytes;
    if (!this.turnResetScheduled) {
      this.turnResetScheduled = true;
      setImmediate(this.resetTurnBudget);
    }
  }

  /** Made once: the write path schedules it every pass of the event loop that writes here. */
  private readonly resetTurnBudget = (): void => {
    this.turnResetScheduled = false;
    this.hereBytesThisTurn = 0;
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

  /** The writes here, then the fdatasyncs off the event loop; durable only once all succeeded. */
  private async writeThenSync(task: StepsTask, writeSteps: number): Promise<StepsResult> {
    const result = writeSteps > 0 ? this.writeHere(task.steps.slice(0, writeSteps)) : emptyResult();
    const fds = new Set<number>();
    for (const step of task.steps) if (step.kind === 'sync') fds.add(step.fd);
    const startedMs = performance.now();
    const syncs: Promise<void>[] = [];
    for (const fd of fds) syncs.push(this.backend.syncData(fd));
    this.stats.threadpoolSyncs += syncs.length;
    await Promise.all(syncs);
    // Includes the hop back to the event loop: the fsync metric is what a writer waits.
    result.syncMs = performance.now() - startedMs;
    return result;
  }

  private writeHere(steps: readonly IoStep[]): StepsResult {
    const startedMs = performance.now();
    const result = runSteps(this.backend.fileSystem, steps);
    this.stats.smallWrites++;
    if (performance.now() - startedMs > this.smallWriteStallMs) this.stats.smallWriteStalls++;
    return result;
  }

  private flush(): void {
    this.flushScheduled = false;
    const pending = this.pending;
    this.pending = [];
    // Two tasks share one message: one thread wake-up instead of two.
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
    (this.backend.runInPool({ kind: 'multi', parts }, transferList) as Promise<MultiStepsResult>).then(
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
    return this.backend.runInPool(task, []) as Promise<ReadResult>;
  }

  scan(task: ScanTask): Promise<ScanResult> {
    return this.backend.runInPool(task, []) as Promise<ScanResult>;
  }

  list(directoryPath: string): Promise<string[]> {
    return this.backend.runInPool({ kind: 'list', path: directoryPath }, []) as Promise<string[]>;
  }

  walScan(task: WalScanTask): Promise<WalScanResult> {
    return this.backend.runInPool(task, []) as Promise<WalScanResult>;
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

function emptyResult(): StepsResult {
  return { fds: [], cut: null, syncMs: 0 };
}
