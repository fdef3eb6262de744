// The two routes of the I/O executor, each decided by chooseRoute: HERE (small positioned writes
// copied into the page cache on the event loop, then their fdatasyncs on libuv's threadpool) and
// the POOL (everything else). A per-turn budget bounds what the event loop writes.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseRoute, IoExecutor, nodeBackend } from '../../src/storage/io-executor.js';
import type { IoStep, StepsTask } from '../../src/storage/io-ops.js';

let dir = '';
let fd = -1;
let executor: IoExecutor | null = null;

function makeExecutor(options: {
  threads: number;
  smallWriteBytesMax?: number;
  smallWriteStallMs?: number;
}): IoExecutor {
  return new IoExecutor(nodeBackend(options.threads), options);
}

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

describe('chooseRoute: one decision, two routes', () => {
  const limits = { smallWriteBytesMax: 1024, turnBytesLeft: 256 * 1024 };
  const write = (bytes: number, fd = 5): IoStep => ({
    kind: 'write',
    fd,
    position: 0,
    buffers: [new Uint8Array(bytes)],
  });
  const sync: IoStep = { kind: 'sync', fd: 5 };
  const task = (...steps: IoStep[]): StepsTask => ({ kind: 'steps', steps });

  it('HERE: small writes to open files, then nothing or only fdatasyncs; or fdatasyncs alone', () => {
    expect(chooseRoute(task(write(100), write(24)), limits)).toEqual({
      route: 'here',
      writeSteps: 2,
      bytes: 124,
    });
    const walWindow = task(write(1024), sync);
    expect(chooseRoute(walWindow, limits)).toEqual({ route: 'here', writeSteps: 1, bytes: 1024 });
    const flush = task(sync);
    expect(chooseRoute(flush, limits)).toEqual({ route: 'here', writeSteps: 0, bytes: 0 });
  });

  it('POOL: large writes, past the turn budget, opens, closes, cuts, or the route turned off', () => {
    expect(chooseRoute(task(write(1025)), limits)).toEqual({ route: 'pool' });
    expect(chooseRoute(task(write(100)), { ...limits, turnBytesLeft: 99 })).toEqual({
      route: 'pool',
    });
    const opens = task({ kind: 'open', path: 'x', slot: 0 }, write(10, -1));
    expect(chooseRoute(opens, limits)).toEqual({ route: 'pool' });
    const closes = task(write(10), { kind: 'close', fd: 5 });
    expect(chooseRoute(closes, limits)).toEqual({ route: 'pool' });
    const writeAfterSync = task(sync, write(10));
    expect(chooseRoute(writeAfterSync, limits)).toEqual({ route: 'pool' });
    expect(chooseRoute(task(write(10)), { ...limits, smallWriteBytesMax: 0 })).toEqual({
      route: 'pool',
    });
  });
});

describe('IoExecutor on node:fs and the pool', () => {
  it('writes a small task on the calling thread, one microtask later', async () => {
    executor = makeExecutor({ threads: 1, smallWriteBytesMax: 1024 });
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
    executor = makeExecutor({ threads: 1, smallWriteBytesMax: 1024 });
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
      poolTasks: 2,
    });
  });

  it('counts a write here slower than smallWriteStallMs as a stall, and keeps writing here', async () => {
    // A threshold no write can meet: every one counts as a stall; the route does not change.
    executor = makeExecutor({ threads: 1, smallWriteBytesMax: 1024, smallWriteStallMs: -1 });
    await executor.steps(writeTask(0, 10, 1));
    await executor.steps(writeTask(10, 10, 2));
    await executor.steps(writeTask(20, 10, 3));
    expect(executor.stats.smallWrites).toBe(3);
    expect(executor.stats.smallWriteStalls).toBe(3);
    expect(fileBytes().length).toBe(30);
  });

  it('writes a small task that then syncs here, and runs its fdatasync on the threadpool', async () => {
    executor = makeExecutor({ threads: 1, smallWriteBytesMax: 1024 });
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
      poolTasks: 0,
    });
  });

  it('runs a task of fdatasyncs alone (the async-mode flush) on the threadpool', async () => {
    executor = makeExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    fs.writeSync(fd, Buffer.alloc(10, 4), 0, 10, 0);
    const result = await executor.steps({ kind: 'steps', steps: [{ kind: 'sync', fd }] });
    expect(result.syncMs).toBeGreaterThan(0);
    expect(executor.stats).toEqual({
      smallWrites: 0,
      smallWriteStalls: 0,
      threadpoolSyncs: 1,
      threadpoolWrites: 0,
      poolTasks: 0,
    });
    await expect(executor.steps({ kind: 'steps', steps: [{ kind: 'sync', fd: 1_000_000 }] })).rejects.toThrow(
      /EBADF/,
    );
  });

  it('rejects when the fdatasync after a small write fails', async () => {
    executor = makeExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    const task = writeTask(0, 10, 3);
    task.steps.push({ kind: 'sync', fd: 1_000_000 });
    await expect(executor.steps(task)).rejects.toThrow(/EBADF/);
    expect(fileBytes().length).toBe(10);
  });

  it('stops at a budget of bytes per event-loop turn, and starts again on the next turn', async () => {
    executor = makeExecutor({ threads: 2, smallWriteBytesMax: 64 * 1024 });
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

  it('with smallWriteBytesMax 0, every write and fdatasync goes through the pool', async () => {
    executor = makeExecutor({ threads: 1 });
    await executor.steps(writeTask(0, 10, 1));
    await executor.steps({ kind: 'steps', steps: [{ kind: 'sync', fd }] });
    expect(executor.stats.smallWrites).toBe(0);
    expect(executor.stats.threadpoolSyncs).toBe(0);
  });

  it('rejects a small write that fails, like a pool task would', async () => {
    executor = makeExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    // Far above any descriptor this process has open (a closed one could be reused meanwhile).
    const task: StepsTask = {
      kind: 'steps',
      steps: [{ kind: 'write', fd: 1_000_000, position: 0, buffers: [new Uint8Array(4)] }],
    };
    await expect(executor.steps(task)).rejects.toThrow(/EBADF/);
  });
});
