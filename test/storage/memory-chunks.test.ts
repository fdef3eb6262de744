// Memory-mode logs keep their entries' data in chunks of bounded size: what is read back is what was
// written, across suffix and prefix cuts; a prefix cut frees whole chunks only; the node's count
// of memory-mode bytes follows every append, cut, snapshot, close and drop.

import { afterEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { StorageEngine } from '../../src/storage/index.js';
import {
  type ChunkSummary,
  MEMORY_CHUNK_BYTES_MIN,
  MEMORY_ENTRY_BOOKKEEPING_BYTES,
  MemoryAccount,
  MemoryChunks,
} from '../../src/storage/memory-chunks.js';
import { entryProblem, makeEntries, removeDir, TestLog, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

const CHUNK_MAX = 64 * 1024;

function chunksWith(entries: readonly Entry[]): {
  chunks: MemoryChunks;
  account: MemoryAccount;
  views: Uint8Array[];
} {
  const account = new MemoryAccount();
  const chunks = new MemoryChunks({ account, chunkBytesMax: CHUNK_MAX });
  const views = entries.map((entry) => chunks.copy(entry.index, entry.data));
  return { chunks, account, views };
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

describe('MemoryChunks', () => {
  it('copies data into chunks that double from the minimum up to the maximum size', () => {
    const entries = makeEntries(1, 200, 1, 1000);
    const { chunks, account, views } = chunksWith(entries);
    for (let i = 0; i < entries.length; i++) expect(views[i]).toEqual(entries[i]!.data);
    const summaries = chunks.summaries(1);
    // 4, 8, 16, 32 KiB, then 64 KiB chunks; each ends where the next entry did not fit.
    const sizes = summaries.map(
      (s) => s.heldBytes - (s.lastIndex - s.baseIndex + 1) * MEMORY_ENTRY_BOOKKEEPING_BYTES,
    );
    expect(sizes.slice(0, 5)).toEqual([4096, 8192, 16384, 32768, 65536]);
    expect(sizes.every((size) => size <= CHUNK_MAX)).toBe(true);
    expect(summaries[0]!.baseIndex).toBe(1);
    for (let i = 1; i < summaries.length; i++)
      expect(summaries[i]!.baseIndex).toBe(summaries[i - 1]!.lastIndex + 1);
    expect(summaries[summaries.length - 1]!.lastIndex).toBe(200);
    expect(chunks.heldBytes).toBe(sum(summaries.map((s) => s.heldBytes)));
    // Retention counts the data filled, as in a segment file: 1000 bytes and bookkeeping each.
    expect(sum(summaries.map((s) => s.sizeBytes))).toBe(200 * (1000 + MEMORY_ENTRY_BOOKKEEPING_BYTES));
    expect(account.bytes).toBe(chunks.heldBytes);
  });

  it('gives an entry larger than the maximum a chunk of its own, of its size', () => {
    const { chunks } = chunksWith([
      ...makeEntries(1, 1, 1, 100),
      ...makeEntries(2, 1, 1, CHUNK_MAX * 3),
      ...makeEntries(3, 1, 1, 100),
    ]);
    const sizes = chunks
      .summaries(1)
      .map((s) => [s.baseIndex, s.lastIndex, s.heldBytes - MEMORY_ENTRY_BOOKKEEPING_BYTES]);
    expect(sizes).toEqual([
      [1, 1, MEMORY_CHUNK_BYTES_MIN],
      [2, 2, CHUNK_MAX * 3],
      [3, 3, MEMORY_CHUNK_BYTES_MIN * 2],
    ]);
  });

  it('a suffix cut seals its chunk: later entries never overwrite bytes read before the cut', () => {
    const entries = makeEntries(1, 3, 1, 100);
    const { chunks, account, views } = chunksWith(entries);
    const before = chunks.heldBytes;
    chunks.truncateFrom(3, views[2]!.byteOffset);
    expect(chunks.heldBytes).toBe(before - MEMORY_ENTRY_BOOKKEEPING_BYTES);
    const replacement = makeEntries(3, 1, 2, 100)[0]!;
    chunks.copy(3, replacement.data);
    expect(views[2]).toEqual(entries[2]!.data); // the cut entry's bytes stay as they were read
    expect(chunks.summaries(1).map((s) => [s.baseIndex, s.lastIndex, s.sizeBytes])).toEqual([
      [1, 2, 2 * (100 + MEMORY_ENTRY_BOOKKEEPING_BYTES)],
      [3, 3, 100 + MEMORY_ENTRY_BOOKKEEPING_BYTES],
    ]);
    chunks.truncateFrom(2, views[1]!.byteOffset);
    expect(chunks.summaries(1).map((s) => [s.baseIndex, s.lastIndex])).toEqual([[1, 1]]);
    expect(account.bytes).toBe(chunks.heldBytes);
    expect(() => chunks.copy(5, replacement.data)).toThrow(/entry 5 after 1/);
  });

  it('plans appends: bookkeeping alone while they fit, the chunks they open, and changes nothing', () => {
    const { chunks } = chunksWith(makeEntries(1, 1, 1, 1000)); // a 4 KiB chunk, 1000 bytes used
    const B = MEMORY_ENTRY_BOOKKEEPING_BYTES;
    expect(chunks.planAppend(3000, null).addedBytes).toBe(B);
    expect(chunks.planAppend(3097, null).addedBytes).toBe(B + 8192);
    expect(chunks.planAppend(CHUNK_MAX + 1, null).addedBytes).toBe(B + CHUNK_MAX + 1);
    // Three entries planned one after the other: the first fits, the second opens 8 KiB, the
    // third fits in what is left of it, as appending them does.
    let plan = chunks.planAppend(3000, null);
    plan = chunks.planAppend(5000, plan);
    plan = chunks.planAppend(3000, plan);
    expect(plan.addedBytes).toBe(3 * B + 8192);
    const before = chunks.heldBytes;
    chunks.copy(2, new Uint8Array(3000));
    chunks.copy(3, new Uint8Array(5000));
    chunks.copy(4, new Uint8Array(3000));
    expect(chunks.heldBytes - before).toBe(plan.addedBytes);
  });

  it('a prefix cut frees whole chunks only; clear frees everything', () => {
    const { chunks, account } = chunksWith(makeEntries(1, 100, 1, 1000));
    const summaries = chunks.summaries(1);
    const second = summaries[1]!;
    chunks.dropBelow(second.baseIndex + 1); // inside the second chunk: it stays whole
    expect(chunks.summaries(1)[0]!.lastIndex).toBe(second.lastIndex);
    expect(chunks.heldBytes).toBe(sum(summaries.slice(1).map((s) => s.heldBytes)));
    // Seen from the log's start, the chunk holding it starts there.
    expect(chunks.summaries(second.baseIndex + 1)[0]!.baseIndex).toBe(second.baseIndex + 1);
    chunks.dropBelow(second.lastIndex + 1);
    expect(chunks.heldBytes).toBe(sum(summaries.slice(2).map((s) => s.heldBytes)));
    expect(account.bytes).toBe(chunks.heldBytes);
    chunks.clear();
    expect([chunks.heldBytes, account.bytes, chunks.chunkCount]).toEqual([0, 0, 0]);
  });
});

describe('memory-mode PartitionLog', () => {
  async function open(chunkBytes = CHUNK_MAX) {
    const dir = tempDir('memory-chunks');
    dirs.push(dir);
    const engine = await StorageEngine.open({ dataDir: dir, ioThreads: 1, memoryChunkBytesMax: chunkBytes });
    return { engine, t: await new TestLog(engine).open('m1', { mode: 'memory' }) };
  }

  it('offers its chunks to retention as segments, and a prefix cut at a chunk end frees that chunk', async () => {
    const { engine, t } = await open();
    await t.write(makeEntries(1, 400, 1, 1000));
    const chunks = t.log.segmentSummaries() as ChunkSummary[];
    expect(chunks.length).toBeGreaterThan(5);
    expect(t.log.memoryBytes()).toBe(sum(chunks.map((c) => c.heldBytes)));
    expect(engine.memoryModeBytes()).toBe(t.log.memoryBytes());
    // 400 entries of 1000 bytes: the data and its bookkeeping, plus at most the chunks' slack.
    expect(t.log.memoryBytes()).toBeGreaterThanOrEqual(400 * (1000 + MEMORY_ENTRY_BOOKKEEPING_BYTES));
    expect(t.log.memoryBytes()).toBeLessThan(400 * (1000 + MEMORY_ENTRY_BOOKKEEPING_BYTES) + 2 * CHUNK_MAX);

    const cut = chunks[3]!.lastIndex;
    await t.log.createSnapshot(cut, { voters: [1], learners: [] }, new Uint8Array([1]));
    await t.log.compact(cut);
    expect(t.log.firstIndex()).toBe(cut + 1);
    expect(t.log.segmentSummaries()).toEqual(chunks.slice(4));
    expect(t.log.memoryBytes()).toBe(sum(chunks.slice(4).map((c) => c.heldBytes)));
    expect(engine.memoryModeBytes()).toBe(t.log.memoryBytes());
    const rest = await t.log.readEntries(cut + 1, 401, Number.MAX_SAFE_INTEGER);
    expect(rest.length).toBe(400 - cut);
    for (const entry of rest) expect(entryProblem(entry)).toBeNull();
    const byOffset = await t.log.readRecords(cut, { maxBytes: 1 }); // offset = index - 1
    expect(byOffset[0]!.index).toBe(cut + 1);
    await engine.close();
    expect(engine.memoryModeBytes()).toBe(0);
  });

  it('a suffix cut keeps what was written before it, and the count stays exact', async () => {
    const { engine, t } = await open(MEMORY_CHUNK_BYTES_MIN * 4);
    await t.write(makeEntries(1, 60, 1, 500));
    await t.write(makeEntries(41, 30, 2, 500));
    expect(t.log.lastIndex()).toBe(70);
    const all = await t.log.readEntries(1, 71, Number.MAX_SAFE_INTEGER);
    expect(all.map((e) => e.term)).toEqual([...Array(40).fill(1), ...Array(30).fill(2)]);
    for (const entry of all) expect(entryProblem(entry)).toBeNull();
    expect(engine.memoryModeBytes()).toBe(
      sum((t.log.segmentSummaries() as ChunkSummary[]).map((c) => c.heldBytes)),
    );
    // Entries 41..60 were cut from the first chunks: what retention counts is the data kept.
    expect(sum(t.log.segmentSummaries().map((c) => c.sizeBytes))).toBe(
      70 * (500 + MEMORY_ENTRY_BOOKKEEPING_BYTES),
    );
    await engine.close();
  });

  it('a snapshot from the leader, a dropped log and a closed log give their memory back', async () => {
    const { engine, t } = await open();
    const other = await new TestLog(engine).open('m2', { mode: 'memory' });
    await t.write(makeEntries(1, 100, 1, 1000));
    await other.write(makeEntries(1, 50, 1, 1000));
    expect(engine.memoryModeBytes()).toBe(t.log.memoryBytes() + other.log.memoryBytes());
    engine.write([
      {
        log: t.log,
        entries: [],
        hardState: null,
        snapshot: {
          metadata: { index: 500, term: 3, confState: { voters: [1], learners: [] } },
          data: new Uint8Array(),
        },
        mustSync: true,
        persistId: 0,
      },
    ]);
    expect(t.log.memoryBytes()).toBe(0);
    expect(engine.memoryModeBytes()).toBe(other.log.memoryBytes());
    await engine.dropLog('m2');
    expect(engine.memoryModeBytes()).toBe(0);
    await t.write(makeEntries(501, 10, 3, 1000));
    expect(engine.memoryModeBytes()).toBeGreaterThan(0);
    await engine.close();
    expect(engine.memoryModeBytes()).toBe(0);
  });

  it('disk-mode logs count nothing', async () => {
    const dir = tempDir('memory-chunks-disk');
    dirs.push(dir);
    const engine = await StorageEngine.open({ dataDir: dir, ioThreads: 1 });
    const t = await new TestLog(engine).open('d1', { mode: 'async' });
    await t.write(makeEntries(1, 100, 1, 1000));
    expect([t.log.memoryBytes(), engine.memoryModeBytes()]).toEqual([0, 0]);
    expect(t.log.segmentSummaries().length).toBe(1);
    await engine.close();
  });
});
