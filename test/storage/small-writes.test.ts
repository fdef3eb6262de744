// Small positioned writes run on the event loop (a copy into the page cache), everything else in
// the pool; a per-turn budget and a stall guard keep the event loop from paying for the disk.

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
  it('writes a small task on the calling thread, before the promise is even awaited', async () => {
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    const done = executor.steps(writeTask(0, 100, 7));
    // Nothing was posted to a worker: the bytes are in the file already.
    expect(fileBytes().length).toBe(100);
    await done;
    expect(executor.stats.smallWrites).toBe(1);
    expect([...fileBytes()].every((byte) => byte === 7)).toBe(true);
  });

  it('sends larger writes, and any task that syncs, opens or closes, to the pool', async () => {
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024 });
    const large = executor.steps(writeTask(0, 2048, 1));
    expect(fileBytes().length).toBe(0);
    await large;
    const withSync: StepsTask = writeTask(2048, 10, 2);
    withSync.steps.push({ kind: 'sync', fd });
    await executor.steps(withSync);
    expect(executor.stats.smallWrites).toBe(0);
    expect(fileBytes().length).toBe(2058);
  });

  it('stops at a budget of bytes per event-loop turn, and starts again on the next turn', async () => {
    executor = new PoolExecutor({ threads: 2, smallWriteBytesMax: 64 * 1024 });
    const writes: Promise<unknown>[] = [];
    // 8 x 64 KiB in one turn: the budget (256 KiB) takes the first 4, the pool the rest.
    for (let i = 0; i < 8; i++) writes.push(executor.steps(writeTask(i * 65536, 65536, i + 1)));
    expect(executor.stats.smallWrites).toBe(4);
    await Promise.all(writes);
    await new Promise((resolve) => setImmediate(resolve));
    await executor.steps(writeTask(8 * 65536, 100, 9));
    expect(executor.stats.smallWrites).toBe(5);
    const bytes = fileBytes();
    for (let i = 0; i < 8; i++) expect(bytes[i * 65536 + 65535]).toBe(i + 1);
    expect(bytes[8 * 65536]).toBe(9);
  });

  it('sends small writes to the pool for a while after one stalled the event loop', async () => {
    // A threshold no write can meet: the first one counts as a stall.
    executor = new PoolExecutor({ threads: 1, smallWriteBytesMax: 1024, smallWriteStallMs: -1 });
    await executor.steps(writeTask(0, 10, 1));
    expect(executor.stats).toEqual({ smallWrites: 1, smallWriteStalls: 1 });
    const next = executor.steps(writeTask(10, 10, 2));
    expect(fileBytes().length).toBe(10);
    await next;
    expect(executor.stats.smallWrites).toBe(1);
    expect(fileBytes().length).toBe(20);
  });

  it('with smallWriteBytesMax 0, every write goes through the pool', async () => {
    executor = new PoolExecutor({ threads: 1 });
    await executor.steps(writeTask(0, 10, 1));
    expect(executor.stats.smallWrites).toBe(0);
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
