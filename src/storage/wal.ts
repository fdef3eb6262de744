// The node's shared write-ahead file for sync-mode logs: every frame a sync-mode log writes to its
// segment file is also appended here, tagged with the log, and ONE fdatasync of this file per
// window makes the window's frames of every log durable (docs/storage.md "Shared write-ahead
// file"). Segment files are fdatasynced in the background (checkpoints), after which the WAL files
// they cover are deleted. This module owns the record format, the writer (event-loop side) and the
// scan that recovery runs in the pool.
//
// Record layout, little-endian:
//   0  u32  magic 'RLW1'
//   4  u32  CRC32C of bytes [8, 48) (the frame that follows carries its own CRC32C)
//   8  u32  recordBytes (48 + the frame's length)
//   12 u16  version (1)
//   14 u16  kind (1: a segment frame; 2: the log's segment files were synced)
//   16 f64  log id
//   24 f64  log generation
//   32 f64  kind 1: sequence of the segment file the frame was written to;
//           kind 2: the log's last index in its synced segment files
//   40 f64  kind 1: byte position of the frame in that file; kind 2: 0
//   48      kind 1: the segment frame, byte for byte (frame.ts); kind 2: nothing
//
// A kind 2 record follows a write that a log made durable with its own fdatasync instead of the
// WAL (a large one, see LogWriter): the log's earlier records are covered, and replay starts
// after it.

import path from 'node:path';
import { assert } from '../raft/errors.js';
import { crc32c } from './crc32c.js';
import { StorageError } from './errors.js';
import type { SyncFileSystem } from './file-system.js';
import { readFrameHeader, readVerifiedFrame } from './frame.js';
import type { IoExecutor } from './io-executor.js';
import type { IoStep } from './io-ops.js';

export const WAL_MAGIC = 0x31574c52; // 'RLW1' read as a little-endian u32
export const WAL_VERSION = 1;
export const WAL_KIND_FRAME = 1;
export const WAL_KIND_SYNCED = 2;
export const WAL_HEADER_BYTES = 48;
const WAL_SUFFIX = '.wal';
const WAL_DIGITS = 20;
/**
 * First size of a window's buffer; it doubles as records come in. Small: each window allocates a
 * new buffer (it is transferred to a worker). Measured on a lone sync append: 200 µs from
 * engine.write() to the post to the pool with 64 KiB here, 25 µs with 4 KiB.
 */
const WINDOW_BYTES_INITIAL = 4 * 1024;

export function walFileName(sequence: number): string {
  return `${String(sequence).padStart(WAL_DIGITS, '0')}${WAL_SUFFIX}`;
}

export function parseWalFileName(name: string): number | null {
  const match = /^(\d{20})\.wal$/.exec(name);
  return match === null ? null : Number(match[1]);
}

/** One frame as a log hands it to the WAL: where it went in which segment file. */
export interface WalFrame {
  segmentSequence: number;
  position: number;
  /** The encoded segment frame (copied here: the original may be transferred to a worker). */
  bytes: Uint8Array;
}

/** A verified record read back by recovery. */
export interface WalRecord {
  kind: typeof WAL_KIND_FRAME | typeof WAL_KIND_SYNCED;
  logId: number;
  generation: number;
  /** Kind 1: where the frame went. */
  segmentSequence: number;
  position: number;
  /** Kind 2: the log's segment files were synced with this last index. */
  syncedLastIndex: number;
  /** Kind 1: the segment frame, verified (a view into the scanned file's bytes); kind 2: empty. */
  frame: Uint8Array;
}

function writeRecord(
  target: Uint8Array,
  at: number,
  log: { logId: number; generation: number },
  record: WalFrame | { syncedLastIndex: number },
): number {
  const isFrame = 'bytes' in record;
  const recordBytes = WAL_HEADER_BYTES + (isFrame ? record.bytes.length : 0);
  const view = new DataView(target.buffer, target.byteOffset + at, WAL_HEADER_BYTES);
  view.setUint32(0, WAL_MAGIC, true);
  view.setUint32(8, recordBytes, true);
  view.setUint16(12, WAL_VERSION, true);
  view.setUint16(14, isFrame ? WAL_KIND_FRAME : WAL_KIND_SYNCED, true);
  view.setFloat64(16, log.logId, true);
  view.setFloat64(24, log.generation, true);
  view.setFloat64(32, isFrame ? record.segmentSequence : record.syncedLastIndex, true);
  view.setFloat64(40, isFrame ? record.position : 0, true);
  view.setUint32(4, crc32c(target, at + 8, at + WAL_HEADER_BYTES), true);
  if (isFrame) target.set(record.bytes, at + WAL_HEADER_BYTES);
  return recordBytes;
}

/**
 * The record at `at`, if its header and its frame both verify; null otherwise. `verified`: the
 * worker's scan already checked the CRCs of these bytes, walk them without hashing again.
 */
export function readWalRecord(bytes: Uint8Array, at: number, verified = false): WalRecord | null {
  if (bytes.length - at < WAL_HEADER_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, WAL_HEADER_BYTES);
  if (view.getUint32(0, true) !== WAL_MAGIC) return null;
  const kind = view.getUint16(14, true);
  if (view.getUint16(12, true) !== WAL_VERSION || (kind !== WAL_KIND_FRAME && kind !== WAL_KIND_SYNCED))
    return null;
  if (!verified && crc32c(bytes, at + 8, at + WAL_HEADER_BYTES) !== view.getUint32(4, true)) return null;
  const recordBytes = view.getUint32(8, true);
  if (kind === WAL_KIND_SYNCED) {
    if (recordBytes !== WAL_HEADER_BYTES) return null;
    return {
      kind,
      logId: view.getFloat64(16, true),
      generation: view.getFloat64(24, true),
      segmentSequence: -1,
      position: -1,
      syncedLastIndex: view.getFloat64(32, true),
      frame: bytes.subarray(at + WAL_HEADER_BYTES, at + WAL_HEADER_BYTES),
    };
  }
  if (recordBytes <= WAL_HEADER_BYTES || recordBytes > bytes.length - at) return null;
  const frameAt = at + WAL_HEADER_BYTES;
  const frame = verified
    ? readFrameHeader(bytes, frameAt, at + recordBytes)
    : readVerifiedFrame(bytes, frameAt, at + recordBytes);
  if (frame === null || frame.frameBytes !== recordBytes - WAL_HEADER_BYTES) return null;
  return {
    kind,
    logId: view.getFloat64(16, true),
    generation: view.getFloat64(24, true),
    segmentSequence: view.getFloat64(32, true),
    position: view.getFloat64(40, true),
    syncedLastIndex: -1,
    frame: bytes.subarray(frameAt, at + recordBytes),
  };
}

export interface WalScanTask {
  kind: 'walScan';
  path: string;
  /** The newest file may end in a torn write (never acknowledged): cut it back to the last record. */
  cutTornTail: boolean;
}

export interface WalScanResult {
  /** The file's whole, verified records (from byte 0 to validEnd). */
  bytes: Uint8Array;
  fileBytes: number;
  validEnd: number;
}

/** Reads a WAL file and verifies its records in order; runs in the pool. */
export function scanWalFile(fileSystem: SyncFileSystem, task: WalScanTask): WalScanResult {
  const fd = fileSystem.openReadWrite(task.path);
  try {
    const fileBytes = fileSystem.sizeBytes(fd);
    const bytes = new Uint8Array(new ArrayBuffer(fileBytes));
    let got = 0;
    while (got < fileBytes) {
      const n = fileSystem.read(fd, bytes, got, fileBytes - got, got);
      if (n === 0) break;
      got += n;
    }
    let at = 0;
    for (;;) {
      const record = readWalRecord(bytes.subarray(0, got), at);
      if (record === null) break;
      at += WAL_HEADER_BYTES + record.frame.length;
    }
    if (at < fileBytes && task.cutTornTail) {
      fileSystem.truncate(fd, at);
      fileSystem.syncData(fd);
    }
    return { bytes: bytes.subarray(0, at), fileBytes, validEnd: at };
  } finally {
    fileSystem.close(fd);
  }
}

interface Window {
  buffer: Uint8Array;
  bytes: number;
  records: number;
  waiters: { resolve: () => void; reject: (error: Error) => void }[];
}

interface WalFile {
  sequence: number;
  path: string;
  /** -1 until the task that creates it returns. */
  fd: number;
  /** Bytes written to it or reserved by the task in flight. */
  bytes: number;
}

export interface WalStats {
  /** fdatasyncs of WAL files: one per window, however many logs wrote in it. */
  syncs: number;
  records: number;
  bytes: number;
  /** WAL files deleted by checkpoints. */
  filesDeleted: number;
}

/**
 * The writing side, on the event loop. append() copies a log's frames into the gathering window
 * and returns a promise that resolves once they are fdatasynced. One WAL task is in flight at a
 * time (write the window, fdatasync): while it runs, the next window gathers (group commit), so
 * the WAL costs one fdatasync per window, whatever the number of logs in it. A window holds at
 * most `windowBytesMax` (unless one log's frames alone are more): with large writes, acks then
 * come back window by window and the writers keep the disk busy, instead of one huge window
 * swallowing everything in flight.
 */
export class WalWriter {
  readonly stats: WalStats = { syncs: 0, records: 0, bytes: 0, filesDeleted: 0 };
  private readonly executor: IoExecutor;
  private readonly directory: string;
  private current: WalFile;
  /** Files of this run before `current`, oldest first, not deleted yet. */
  private sealed: WalFile[] = [];
  /** Descriptors of sealed files, closed by the next task. */
  private closing: number[] = [];
  private window: Window = emptyWindow();
  /** Windows that reached windowBytesMax, waiting for the task in flight, oldest first. */
  private full: Window[] = [];
  private readonly windowBytesMax: number;
  private readonly onSync: ((durationMs: number) => void) | null;
  private inFlight = false;
  private flushScheduled = false;
  private failure: StorageError | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(options: {
    executor: IoExecutor;
    directory: string;
    firstSequence: number;
    windowBytesMax: number;
    /** Each WAL task's time in fdatasync, in ms (for the fsync metric). */
    onSync?: (durationMs: number) => void;
  }) {
    this.onSync = options.onSync ?? null;
    this.executor = options.executor;
    this.windowBytesMax = options.windowBytesMax;
    this.directory = options.directory;
    this.current = this.newFile(options.firstSequence);
  }

  /** Bytes in the file being written now (checkpoint trigger). */
  get currentBytes(): number {
    let bytes = this.current.bytes + this.window.bytes;
    for (const window of this.full) bytes += window.bytes;
    return bytes;
  }

  /**
   * Appends a log's frames (or the record that its segment files were synced through
   * `syncedLastIndex`) to the next window; resolves once fdatasynced.
   */
  append(
    log: { logId: number; generation: number },
    frames: readonly WalFrame[] | { syncedLastIndex: number },
  ): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const records = Array.isArray(frames) ? frames : [frames as { syncedLastIndex: number }];
    let needed = 0;
    for (const record of records) needed += WAL_HEADER_BYTES + ('bytes' in record ? record.bytes.length : 0);
    if (this.window.records > 0 && this.window.bytes + needed > this.windowBytesMax) {
      this.full.push(this.window);
      this.window = emptyWindow();
    }
    this.reserve(needed);
    const window = this.window;
    for (const record of records) window.bytes += writeRecord(window.buffer, window.bytes, log, record);
    window.records += records.length;
    const done = new Promise<void>((resolve, reject) => window.waiters.push({ resolve, reject }));
    if (!this.flushScheduled && !this.inFlight) {
      this.flushScheduled = true;
      // A microtask later: every log the driver kicks in this turn joins the same window.
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return done;
  }

  private reserve(needed: number): void {
    const window = this.window;
    if (window.bytes + needed <= window.buffer.length) return;
    let size = Math.max(window.buffer.length, WINDOW_BYTES_INITIAL);
    while (size < window.bytes + needed) size *= 2;
    const grown = new Uint8Array(new ArrayBuffer(size));
    grown.set(window.buffer.subarray(0, window.bytes));
    window.buffer = grown;
  }

  private flush(): void {
    if (this.inFlight || this.failure !== null) return;
    let window = this.full.shift();
    if (window === undefined) {
      if (this.window.records === 0) return;
      window = this.window;
      this.window = emptyWindow();
    }
    const file = this.current;
    const steps: IoStep[] = this.closing.map((fd) => ({ kind: 'close', fd }) as IoStep);
    this.closing = [];
    const creating = file.fd < 0;
    if (creating) steps.push({ kind: 'open', path: file.path, slot: 0 });
    const fd = creating ? -1 : file.fd;
    const buffers = [window.buffer.subarray(0, window.bytes)];
    steps.push({ kind: 'write', fd, position: file.bytes, buffers }, { kind: 'sync', fd });
    // A new file's name must be durable before anything in it is reported durable.
    if (creating) steps.push({ kind: 'syncDirectory', path: this.directory });
    file.bytes += window.bytes;
    this.inFlight = true;
    this.executor.steps({ kind: 'steps', steps }).then(
      (result) => {
        if (creating) {
          file.fd = result.fds[0]!;
          if (file !== this.current) this.closing.push(file.fd);
        }
        this.stats.syncs++;
        this.onSync?.(result.syncMs);
        this.stats.records += window.records;
        this.stats.bytes += window.bytes;
        this.inFlight = false;
        for (const waiter of window.waiters) waiter.resolve();
        this.flush();
        if (!this.inFlight) this.wakeIdle();
      },
      (error: unknown) => {
        this.inFlight = false;
        this.failure = new StorageError('IoFailed', `${file.path}: ${String(error)}`, { cause: error });
        for (const queued of [window, ...this.full, this.window])
          for (const waiter of queued.waiters) waiter.reject(this.failure!);
        this.full = [];
        this.window = emptyWindow();
        this.wakeIdle();
      },
    );
  }

  /**
   * Starts a new file for the records that come next; returns the files before it (the caller
   * deletes them once every log synced its segment files past them). Null when the current file
   * is empty (nothing to roll).
   */
  roll(): { path: string; sequence: number }[] | null {
    if (this.currentBytes === 0) return null;
    const old = this.current;
    this.sealed.push(old);
    if (old.fd >= 0) this.closing.push(old.fd);
    this.current = this.newFile(old.sequence + 1);
    return this.sealed.map((file) => ({ path: file.path, sequence: file.sequence }));
  }

  /** Deletes sealed files (after a checkpoint synced every segment write they hold). */
  async deleteFiles(files: readonly { path: string; sequence: number }[]): Promise<void> {
    if (files.length === 0) return;
    const steps: IoStep[] = files.map((file) => ({ kind: 'unlink', path: file.path }));
    steps.push({ kind: 'syncDirectory', path: this.directory });
    await this.executor.steps({ kind: 'steps', steps });
    const gone = new Set(files.map((file) => file.sequence));
    this.sealed = this.sealed.filter((file) => !gone.has(file.sequence));
    this.stats.filesDeleted += files.length;
  }

  /** Resolves once no WAL task is in flight and nothing is gathering. */
  idle(): Promise<void> {
    const gathering = this.window.records > 0 || this.full.length > 0;
    if (!this.inFlight && (!gathering || this.failure !== null)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * After idle() and after every log synced its segments (clean close): closes and deletes every
   * file of this run.
   */
  async closeAndDelete(): Promise<void> {
    assert(!this.inFlight, 'WAL close with a task in flight');
    const files = [...this.sealed, this.current];
    const steps: IoStep[] = this.closing.map((fd) => ({ kind: 'close', fd }) as IoStep);
    if (this.current.fd >= 0) steps.push({ kind: 'close', fd: this.current.fd });
    for (const file of files) steps.push({ kind: 'unlink', path: file.path });
    steps.push({ kind: 'syncDirectory', path: this.directory });
    this.closing = [];
    this.current.fd = -1;
    await this.executor.steps({ kind: 'steps', steps });
    this.stats.filesDeleted += this.sealed.length + (this.current.bytes > 0 ? 1 : 0);
    this.sealed = [];
  }

  /** After idle(), for a crash-like stop: closes descriptors, deletes nothing. */
  async closeFiles(): Promise<void> {
    const steps: IoStep[] = this.closing.map((fd) => ({ kind: 'close', fd }) as IoStep);
    if (this.current.fd >= 0) steps.push({ kind: 'close', fd: this.current.fd });
    this.closing = [];
    this.current.fd = -1;
    if (steps.length > 0) await this.executor.steps({ kind: 'steps', steps });
  }

  private newFile(sequence: number): WalFile {
    return { sequence, path: path.join(this.directory, walFileName(sequence)), fd: -1, bytes: 0 };
  }
}

function emptyWindow(): Window {
  return { buffer: new Uint8Array(0), bytes: 0, records: 0, waiters: [] };
}

/** What the WAL files of earlier runs hold, read at open. */
export interface RecoveredWal {
  /** Verified records per log id, in write order. */
  records: Map<number, WalRecord[]>;
  files: { path: string; sequence: number }[];
  nextSequence: number;
}

/**
 * Reads every WAL file left by earlier runs, oldest first. Only the newest may end in a torn
 * write (each WAL task ends with an fdatasync before the next file is started): it is cut back.
 * A bad record in an older file is corruption of durable data: refuse to open, naming the place.
 */
export async function recoverWal(executor: IoExecutor, directory: string): Promise<RecoveredWal> {
  await executor.steps({
    kind: 'steps',
    steps: [
      { kind: 'makeDirectory', path: directory },
      { kind: 'syncDirectory', path: path.dirname(directory) },
    ],
  });
  const files: { path: string; sequence: number }[] = [];
  for (const name of await executor.list(directory)) {
    const sequence = parseWalFileName(name);
    if (sequence !== null) files.push({ path: path.join(directory, name), sequence });
  }
  files.sort((a, b) => a.sequence - b.sequence);
  const scans = await Promise.all(
    files.map((file, i) =>
      executor.walScan({ kind: 'walScan', path: file.path, cutTornTail: i === files.length - 1 }),
    ),
  );
  const records = new Map<number, WalRecord[]>();
  for (let i = 0; i < files.length; i++) {
    const scan = scans[i]!;
    if (i < files.length - 1 && scan.validEnd < scan.fileBytes) {
      throw new StorageError(
        'CorruptLog',
        `${files[i]!.path}: bad WAL record at byte ${scan.validEnd} in a file that was synced whole`,
        { file: files[i]!.path, offsetBytes: scan.validEnd },
      );
    }
    for (let at = 0; at < scan.bytes.length; ) {
      const record = readWalRecord(scan.bytes, at, true);
      assert(record !== null, `${files[i]!.path}: verified record at ${at} does not parse`);
      const list = records.get(record.logId);
      if (list === undefined) records.set(record.logId, [record]);
      else list.push(record);
      at += WAL_HEADER_BYTES + record.frame.length;
    }
  }
  const nextSequence = files.length > 0 ? files[files.length - 1]!.sequence + 1 : 1;
  return { records, files, nextSequence };
}
