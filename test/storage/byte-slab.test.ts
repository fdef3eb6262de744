// Small buffers share slabs (one ArrayBuffer for many), which must never be transferred to a
// worker; the log's cache copies entry data out of larger buffers so it never pins them.

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ByteSlab, isSlabBuffer } from '../../src/storage/byte-slab.js';
import { StorageEngine } from '../../src/storage/index.js';
import { IoExecutor, nodeBackend } from '../../src/storage/io-executor.js';
import { entryProblem, makeEntries, removeDir, TestLog, tempDir } from './helpers.js';

describe('ByteSlab', () => {
  it('carves small buffers from one zeroed slab, and starts a new slab when one is full', () => {
    const slab = new ByteSlab({ slabBytes: 100, ownBufferBytesMin: 50 });
    const first = slab.take(40);
    const second = slab.take(40);
    expect(first.buffer).toBe(second.buffer);
    expect(isSlabBuffer(first.buffer)).toBe(true);
    expect([first.byteOffset, second.byteOffset]).toEqual([0, 40]);
    expect([...first, ...second].every((byte) => byte === 0)).toBe(true);
    first.fill(1);
    expect([...second].every((byte) => byte === 0)).toBe(true);
    const third = slab.take(40);
    expect(third.buffer).not.toBe(first.buffer);
    expect(third.byteOffset).toBe(0);
  });

  it('gives a buffer at or over ownBufferBytesMin an ArrayBuffer of its own', () => {
    const slab = new ByteSlab({ slabBytes: 100, ownBufferBytesMin: 50 });
    const own = slab.take(50);
    expect(own.byteLength).toBe(50);
    expect(own.buffer.byteLength).toBe(50);
    expect(isSlabBuffer(own.buffer)).toBe(false);
  });

  it('refuses options where a small buffer could not fit a slab', () => {
    expect(() => new ByteSlab({ slabBytes: 10, ownBufferBytesMin: 11 })).toThrow(/ownBufferBytesMin/);
    expect(() => new ByteSlab({ slabBytes: 10, ownBufferBytesMin: 0 })).toThrow(/positive/);
  });
});

describe('IoExecutor with slab buffers', () => {
  let dir = '';
  let executor: IoExecutor | null = null;

  afterEach(async () => {
    await executor?.close();
    executor = null;
    if (dir) removeDir(dir);
  });

  it('copies slab buffers for a worker and transfers its own: the slab stays usable', async () => {
    dir = tempDir('byte-slab');
    const fd = fs.openSync(path.join(dir, 'file'), 'w+');
    try {
      // smallWriteBytesMax 0: every write goes to the pool, as a large or sync-mode write would.
      executor = new IoExecutor(nodeBackend(1), { threads: 1, smallWriteBytesMax: 0 });
      const slab = new ByteSlab({ slabBytes: 64, ownBufferBytesMin: 32 });
      const a = slab.take(8).fill(1);
      const b = slab.take(8).fill(2);
      const own = slab.take(32).fill(3);
      await executor.steps({
        kind: 'steps',
        steps: [{ kind: 'write', fd, position: 0, buffers: [a, b, own] }],
      });
      expect([...fs.readFileSync(path.join(dir, 'file'))]).toEqual([
        ...new Array(8).fill(1),
        ...new Array(8).fill(2),
        ...new Array(32).fill(3),
      ]);
      // The slab was copied, not detached: its views still read; the own buffer moved away.
      expect(a.byteLength).toBe(8);
      expect([...a, ...b]).toEqual([...new Array(8).fill(1), ...new Array(8).fill(2)]);
      expect(own.byteLength).toBe(0);
      expect(slab.take(8).buffer).toBe(a.buffer);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('PartitionLog cache', () => {
  it('keeps a copy of entry data that is a view into a larger buffer (a socket read chunk)', async () => {
    const dir = tempDir('byte-slab-cache');
    const engine = await StorageEngine.open({ dataDir: dir, ioThreads: 1 });
    try {
      const t = await new TestLog(engine).open('g1', { mode: 'async' });
      const [first, second] = makeEntries(1, 2, 1, 100);
      const chunk = new Uint8Array(4096);
      chunk.set(first!.data, 100);
      const view = chunk.subarray(100, 100 + first!.data.length);
      await t.write([{ ...first!, data: view }, second!]);
      const [cachedFirst, cachedSecond] = t.log.entries(1, 3, Number.MAX_SAFE_INTEGER);
      expect(entryProblem(cachedFirst!)).toBeNull();
      expect(cachedFirst!.data.buffer).not.toBe(chunk.buffer);
      expect(isSlabBuffer(cachedFirst!.data.buffer)).toBe(true);
      // Data that owns its buffer whole is kept in it, without a copy.
      expect(entryProblem(cachedSecond!)).toBeNull();
      expect(cachedSecond!.data.buffer).toBe(second!.data.buffer);
    } finally {
      await engine.close();
      removeDir(dir);
    }
  });
});
