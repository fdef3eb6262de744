// Small positioned writes run on the event loop (a copy into the page cache), an fdatasync that
// follows them or stands alone on libuv's threadpool, everything else in the pool; a per-turn
// budget and a stall guard keep the event loop from paying for the disk.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PoolExecutor } from '../../src/storage/io-executor.js';
import type { StepsTask } from '../../src/storage/io-ops.js';

let dir = '';
let fd = -1;
let executor: PoolExecutor | null = null;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftlog-small-writes-'));
  fd = fs.openSync(path.join(dir, 'file'), 'w+');
});

afterEach(async () => {
  await executor?.close();
  executor = null;
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

function writeTask(position: number, bytes: number, fill: number): StepsTask {
  return {
    kind: 'steps',
    steps: [{ kind: 'write', fd, position, buffers: [new Uint8Array(bytes).fill(fill)] }],
  };
}

function fileBytes(): Buffer {
  return fs.readFileSync(path.join(dir, 'file'));
}

describe('PoolExecutor small writes', () => {
  it('writes a small task on the calling thread, one microtask later', async () => {
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    const done = executor.steps(writeTask(0, 100, 7));
    expect(fileBytes().length).toBe(0);
    await Promise.resolve();
    // Nothing was posted to a worker: the bytes are in the file already.
    expect(fileBytes().length).toBe(100);
    await done;
    expect(executor.stats.smallWrites).toBe(1);
    expect([...fileBytes()].every((byte) => byte === 7)).toBe(true);
  });

  it('sends larger writes, and any task that opens or closes, to the pool', async () => {
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    const large = executor.steps(writeTask(0, 2048, 1));
    expect(fileBytes().length).toBe(0);
    await large;
    const otherPath = path.join(dir, 'other');
    const opened = await executor.steps({
      kind: 'steps',
      steps: [
        { kind: 'open', path: otherPath, slot: 0 },
        { kind: 'write', fd: -1, position: 0, buffers: [new Uint8Array(10)] },
        { kind: 'sync', fd: -1 },
        { kind: 'close', fd: -1 },
      ],
    });
    expect(opened.fds.length).toBe(1);
    expect(fs.statSync(otherPath).size).toBe(10);
    expect(executor.stats).toEqual({
      smallWrites: 0,
      smallWriteStalls: 0,
      threadpoolSyncs: 0,
      threadpoolWrites: 0,
    });
  });

  it('writes a small task that then syncs here, and runs its fdatasync on the threadpool', async () => {
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    const task = writeTask(0, 10, 2);
    task.steps.push({ kind: 'sync', fd });
    const done = executor.steps(task);
    expect(fileBytes().length).toBe(10);
    const result = await done;
    expect(result.syncMs).toBeGreaterThan(0);
    expect(executor.stats).toEqual({
      smallWrites: 1,
      smallWriteStalls: 0,
      threadpoolSyncs: 1,
      threadpoolWrites: 0,
    });
  });

  it('runs a task of fdatasyncs alone (the async-mode flush) on the threadpool', async () => {
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    fs.writeSync(fd, Buffer.alloc(10, 4), 0, 10, 0);
    const result = await executor.steps({ kind: 'steps', steps: [{ kind: 'sync', fd }] });
    expect(result.syncMs).toBeGreaterThan(0);
    expect(executor.stats).toEqual({
      smallWrites: 0,
      smallWriteStalls: 0,
      threadpoolSyncs: 1,
      threadpoolWrites: 0,
    });
    await expect(executor.steps({ kind: 'steps', steps: [{ kind: 'sync', fd: 1_000_000 }] })).rejects.toThrow(
      /EBADF/,
    );
  });

  it('rejects when the fdatasync after a small write fails', async () => {
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    const task = writeTask(0, 10, 3);
    task.steps.push({ kind: 'sync', fd: 1_000_000 });
    await expect(executor.steps(task)).rejects.toThrow(/EBADF/);
    expect(fileBytes().length).toBe(10);
  });

  it('stops at a budget of bytes per event-loop turn, and starts again on the next turn', async () => {
    executor = new PoolExecutor({ threads: 2, smallWriteBytesMax: 64 * 1024 });
    const writes: Promise<unknown>[] = [];
    // 8 x 64 KiB in one turn: the budget (256 KiB) takes the first 4, the pool the rest.
    for (let i = 0; i < 8; i++) writes.push(executor.steps(writeTask(i * 65536, 65536, i + 1)));
    await Promise.resolve();
    expect(executor.stats.smallWrites).toBe(4);
    await Promise.all(writes);
    await new Promise((resolve) => setImmediate(resolve));
    await executor.steps(writeTask(8 * 65536, 100, 9));
    expect(executor.stats.smallWrites).toBe(5);
    const bytes = fileBytes();
    for (let i = 0; i < 8; i++) expect(bytes[i * 65536 + 65535]).toBe(i + 1);
    expect(bytes[8 * 65536]).toBe(9);
  });

  it('sends small writes to the pool for a while after two stalled the event loop within a second', async () => {
    // A threshold no write can meet: every one counts as a stall.
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024, smallWriteStallMs: -1 });
    await executor.steps(writeTask(0, 10, 1));
    await executor.steps(writeTask(10, 10, 2));
    expect(executor.stats).toEqual({
      smallWrites: 2,
      smallWriteStalls: 2,
      threadpoolSyncs: 0,
      threadpoolWrites: 0,
    });
    const next = executor.steps(writeTask(20, 10, 3));
    await Promise.resolve();
    expect(fileBytes().length).toBe(20);
    await next;
    expect(executor.stats.smallWrites).toBe(2);
    expect(fileBytes().length).toBe(30);
  });

  it('keeps small writes here after a lone stall (the window passed before the next one)', async () => {
    executor = new PoolExecutor({
      threads: 1,
      smallWriteBytesMax: 1024,
      smallWriteStallMs: -1,
      smallWriteStallWindowMs: 200,
    });
    await executor.steps(writeTask(0, 10, 1));
    const startedMs = performance.now();
    // Wait out the window on the clock itself (bounded: 200 ms plus a timer's slack).
    while (performance.now() - startedMs <= 210) await new Promise((resolve) => setTimeout(resolve, 10));
    const lone = executor.steps(writeTask(10, 10, 2));
    await Promise.resolve();
    expect(fileBytes().length).toBe(20); // still written on this thread
    await lone;
    expect(executor.stats.smallWrites).toBe(2);
    expect(executor.stats.smallWriteStalls).toBe(2);
    // That one and the next are within the window: small writes go to the pool now.
    await executor.steps(writeTask(20, 10, 3));
    await executor.steps(writeTask(30, 10, 4));
    expect(executor.stats.smallWrites).toBe(3);
    expect(fileBytes().length).toBe(40);
  });

  it('while small writes are off here, a small write that then syncs goes to the threadpool whole', async () => {
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024, smallWriteStallMs: -1 });
    await executor.steps(writeTask(0, 10, 1));
    await executor.steps(writeTask(10, 10, 1));
    const task = writeTask(20, 10, 2);
    task.steps.push({ kind: 'sync', fd });
    // Not written on this thread (two stalls turned that off): counted as a threadpool write below.
    await executor.steps(task);
    expect(fileBytes().subarray(20)).toEqual(Buffer.alloc(10, 2));
    expect(executor.stats).toEqual({
      smallWrites: 2,
      smallWriteStalls: 2,
      threadpoolSyncs: 1,
      threadpoolWrites: 1,
    });
  });

  it('with smallWriteBytesMax 0, every write and fdatasync goes through the pool', async () => {
    executor = new PoolExecutor({ threads: 1 });
    await executor.steps(writeTask(0, 10, 1));
    await executor.steps({ kind: 'steps', steps: [{ kind: 'sync', fd }] });
    expect(executor.stats.smallWrites).toBe(0);
    expect(executor.stats.threadpoolSyncs).toBe(0);
  });

  it('rejects a small write that fails, like a pool task would', async () => {
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    // Far above any descriptor this process has open (a closed one could be reused meanwhile).
    const task: StepsTask = {
      kind: 'steps',
      steps: [{ kind: 'write', fd: 1_000_000, position: 0, buffers: [new Uint8Array(4)] }],
    };
    await expect(executor.steps(task)).rejects.toThrow(/EBADF/);
  });
});
