import { afterEach, describe, expect, it } from 'vitest';
import { isRaftError } from '../../src/raft/errors.js';
import { type PersistenceMode, StorageEngine } from '../../src/storage/index.js';
import { entryProblem, makeEntries, removeDir, TestLog, tempDir, waitFor } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

async function openEngine(dir: string, extra: Partial<Parameters<typeof StorageEngine.open>[0]> = {}) {
  return StorageEngine.open({ dataDir: dir, ioThreads: 2, ...extra });
}

describe('PartitionLog', () => {
  for (const mode of ['sync', 'async', 'memory'] as PersistenceMode[]) {
    it(`${mode}: reads reflect submitted writes at once and completions come in order`, async () => {
      const dir = tempDir('basic');
      dirs.push(dir);
      const engine = await openEngine(dir);
      const t = await new TestLog(engine).open('g1', { mode });
      const writes = [];
      for (let i = 0; i < 20; i++) writes.push(t.write(makeEntries(i * 5 + 1, 5, 1)));
      expect(t.log.lastIndex()).toBe(100);
      expect(t.log.term(100)).toBe(1);
      expect(t.log.entries(1, 101, Number.MAX_SAFE_INTEGER).length).toBe(100);
      await Promise.all(writes);
      expect(t.persisted).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      await engine.close();
    });
  }

  it('sync: entries, terms and hard state survive a reopen; reads go to disk past the cache', async () => {
    const dir = tempDir('reopen');
    dirs.push(dir);
    let engine = await openEngine(dir, { segmentBytesMax: 8192, cacheBytesMax: 4096 });
    let t = await new TestLog(engine).open('g1', { mode: 'sync' });
    await t.write(makeEntries(1, 50, 1, 100), { term: 1, vote: 2, commit: 0 });
    await t.write(makeEntries(51, 50, 2, 100), { term: 2, vote: 3, commit: 90 });
    await engine.close();

    engine = await openEngine(dir, { segmentBytesMax: 8192, cacheBytesMax: 4096 });
    t = await new TestLog(engine).open('g1', { mode: 'sync' });
    expect(t.log.firstIndex()).toBe(1);
    expect(t.log.lastIndex()).toBe(100);
    expect(t.log.term(50)).toBe(1);
    expect(t.log.term(51)).toBe(2);
    expect(t.log.initialState().hardState).toEqual({ term: 2, vote: 3, commit: 90 });
    expect(t.log.mayHaveLostTail).toBe(false);
    let pending = false;
    try {
      t.log.entries(10, 60, Number.MAX_SAFE_INTEGER);
    } catch (error) {
      pending = isRaftError(error, 'EntriesPending');
    }
    expect(pending).toBe(true);
    await waitFor(() => t.entriesAvailable > 0, 5000, 'entries to load');
    const loaded = t.log.entries(10, 60, Number.MAX_SAFE_INTEGER);
    expect(loaded[0]!.index).toBe(10);
    for (const entry of loaded) expect(entryProblem(entry)).toBeNull();
    const all = [];
    for (let lo = 1; lo <= 100; ) {
      const got = await t.log.readEntries(lo, 101, 2000);
      expect(got.length).toBeGreaterThan(0);
      for (const entry of got) {
        expect(entry.index).toBe(lo++);
        expect(entryProblem(entry)).toBeNull();
      }
      all.push(...got);
    }
    expect(all.length).toBe(100);
    const byOffset = await t.log.readRecords(41, { maxBytes: 500 });
    expect(byOffset[0]!.index).toBe(42);
    await engine.close();
  });

  for (const mode of ['sync', 'async'] as PersistenceMode[]) {
    it(`${mode}: a read by offset finds a record inside a frame larger than one read, after small frames`, async () => {
      // A follower catching up writes thousands of entries as one frame. The sparse point before
      // it may be several frames back, and a read of maxBytes stops before the big frame (reads
      // return whole frames): the reader must read on, not report nothing there.
      const dir = tempDir('big-frame');
      dirs.push(dir);
      let engine = await openEngine(dir, { cacheBytesMax: 1024 });
      let t = await new TestLog(engine).open('g1', { mode });
      for (let i = 1; i <= 20; i++) await t.write(makeEntries(i, 1, 1, 100));
      await t.write(makeEntries(21, 2000, 1, 500)); // one frame of about 1 MB
      await t.write(makeEntries(2021, 5, 1, 100));
      await engine.close();
      engine = await openEngine(dir, { cacheBytesMax: 1024 });
      t = await new TestLog(engine).open('g1', { mode });
      for (const offset of [19, 20, 21, 1000, 2019, 2020, 2024]) {
        const got = await t.log.readRecords(offset, { maxBytes: 4096 });
        expect(got[0]?.index, `offset ${offset}`).toBe(offset + 1); // offset = index - 1
        for (const entry of got) expect(entryProblem(entry)).toBeNull();
      }
      await engine.close();
    });

    it(`${mode}: a write below the last index cuts the suffix, in memory and on disk`, async () => {
      const dir = tempDir('cut');
      dirs.push(dir);
      let engine = await openEngine(dir, { segmentBytesMax: 4096, cacheBytesMax: 1024 });
      let t = await new TestLog(engine).open('g1', { mode });
      for (let i = 0; i < 10; i++) await t.write(makeEntries(i * 10 + 1, 10, 1, 64));
      const done = t.write(makeEntries(35, 5, 2, 64));
      expect(t.log.lastIndex()).toBe(39);
      expect(t.log.term(34)).toBe(1);
      expect(t.log.term(35)).toBe(2);
      await done;
      await t.write(makeEntries(40, 3, 2, 64));
      await engine.close();

      engine = await openEngine(dir, { segmentBytesMax: 4096, cacheBytesMax: 1024 });
      t = await new TestLog(engine).open('g1', { mode });
      expect(t.log.lastIndex()).toBe(42);
      const got = await t.log.readEntries(30, 43, Number.MAX_SAFE_INTEGER);
      expect(got.map((e) => `${e.index}/${e.term}`)).toEqual(
        [30, 31, 32, 33, 34]
          .map((i) => `${i}/1`)
          .concat([35, 36, 37, 38, 39, 40, 41, 42].map((i) => `${i}/2`)),
      );
      for (const entry of got) expect(entryProblem(entry)).toBeNull();
      await engine.close();
    });
  }
});
