// Shared helpers for the storage tests: temp directories, entries with verifiable payloads, and a
// tiny driver that submits writes and waits for their completions.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Entry, HardState } from '../../src/raft/types.js';
import type { RecordRange } from '../../src/storage/frame.js';
import type { LogWrite, PartitionLog, PartitionLogOptions, StorageEngine } from '../../src/storage/index.js';

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `raftlog-${prefix}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Payload of entry `index` at `term`: its own index and term, then filler, so reads can be checked. */
export function payload(index: number, term: number, bytes = 32): Uint8Array {
  const data = new Uint8Array(Math.max(16, bytes));
  const view = new DataView(data.buffer);
  view.setFloat64(0, index, true);
  view.setFloat64(8, term, true);
  for (let i = 16; i < data.length; i++) data[i] = (index * 31 + i) & 0xff;
  return data;
}

export function makeEntries(first: number, count: number, term: number, bytes = 32): Entry[] {
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++)
    entries.push({ index: first + i, term, type: 0, data: payload(first + i, term, bytes) });
  return entries;
}

/** Checks that an entry carries the payload written for it; returns a problem or null. */
export function entryProblem(entry: Entry): string | null {
  if (entry.data.length < 16) return `entry ${entry.index}: ${entry.data.length} bytes`;
  const view = new DataView(entry.data.buffer, entry.data.byteOffset, entry.data.length);
  const index = view.getFloat64(0, true);
  const term = view.getFloat64(8, true);
  if (index !== entry.index || term !== entry.term)
    return `entry ${entry.index}/${entry.term} holds ${index}/${term}`;
  for (let i = 16; i < entry.data.length; i++) {
    if (entry.data[i] !== ((index * 31 + i) & 0xff)) return `entry ${entry.index}: byte ${i} differs`;
  }
  return null;
}

/** One record per entry, offset = index - 1 (what a broker would assign for data entries). */
export function describeByIndex(entry: Entry): RecordRange | null {
  return entry.data.length > 0 ? { baseOffset: entry.index - 1, recordCount: 1 } : null;
}

/** Opens a log whose completions are collected, and submits writes that resolve when durable. */
export class TestLog {
  readonly persisted: number[] = [];
  private waiters = new Map<number, () => void>();
  private nextPersistId = 1;
  entriesAvailable = 0;
  log!: PartitionLog;

  constructor(private readonly engine: StorageEngine) {}

  async open(groupId: string, options: Omit<PartitionLogOptions, 'onPersisted'>): Promise<this> {
    this.log = await this.engine.openLog(groupId, {
      describeEntry: describeByIndex,
      onEntriesAvailable: () => {
        this.entriesAvailable++;
      },
      ...options,
      onPersisted: (persistId) => {
        this.persisted.push(persistId);
        this.waiters.get(persistId)?.();
        this.waiters.delete(persistId);
      },
    });
    return this;
  }

  /** Submits a write; the promise resolves when it is durable per the log's mode. */
  write(entries: Entry[], hardState: HardState | null = null): Promise<void> {
    const { write, durable } = this.prepare(entries, hardState);
    this.engine.write([write]);
    return durable;
  }

  /** A write to pass to engine.write() with other logs' writes (one window for all of them). */
  prepare(entries: Entry[], hardState: HardState | null = null): { write: LogWrite; durable: Promise<void> } {
    const persistId = this.nextPersistId++;
    const durable = new Promise<void>((resolve) => this.waiters.set(persistId, resolve));
    return {
      write: { log: this.log, entries, hardState, snapshot: null, mustSync: true, persistId },
      durable,
    };
  }
}

/** Polls `condition` until true or the deadline passes (never sleeps blindly). */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
