// Retention, restarts per mode, lost-tail detection and the key-value area.

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isRaftError } from '../../src/raft/errors.js';
import { StorageEngine } from '../../src/storage/index.js';
import type { StateStore } from '../../src/storage/state-store.js';
import { entryProblem, makeEntries, removeDir, TestLog, tempDir, waitFor } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

function segmentCount(dir: string): number {
  const logs = path.join(dir, 'logs');
  let count = 0;
  for (const log of fs.readdirSync(logs)) count += fs.readdirSync(path.join(logs, log)).length;
  return count;
}

describe('storage lifecycle', () => {
  it('logs opened at the same time get distinct ids, directories and state', async () => {
    const dir = tempDir('raftlog-concurrent-open-');
    dirs.push(dir);
    let engine = await StorageEngine.open({ dataDir: dir });
    const logs = await Promise.all(['1', '2', '3'].map((g) => engine.openLog(g, { mode: 'sync' })));
    const written = logs.map(
      (log, i) =>
        new Promise<void>((resolve) => {
          const entries = makeEntries(1, 3, 1 + i);
          engine.write([
            {
              log,
              entries,
              hardState: { term: 1 + i, vote: 0, commit: 0 },
              snapshot: null,
              mustSync: true,
              persistId: 1,
            },
          ]);
          const timer = setInterval(() => {
            if (log.lastIndex() === 3) {
              clearInterval(timer);
              resolve();
            }
          }, 5);
        }),
    );
    await Promise.all(written);
    await Promise.all(logs.map((log) => log.idle()));
    await engine.close();
    engine = await StorageEngine.open({ dataDir: dir });
    for (const [i, groupId] of ['1', '2', '3'].entries()) {
      const log = await engine.openLog(groupId, { mode: 'sync' });
      expect(log.initialState().hardState.term, `log ${groupId}`).toBe(1 + i);
      expect(log.term(3), `log ${groupId}`).toBe(1 + i);
    }
    await engine.close();
  });

  it('compacts whole segments below the snapshot; the start and snapshot agree across a reopen', async () => {
    const dir = tempDir('compact');
    dirs.push(dir);
    const options = { dataDir: dir, ioThreads: 1, segmentBytesMax: 2048 };
    let engine = await StorageEngine.open(options);
    let t = await new TestLog(engine).open('g', { mode: 'sync' });
    for (let i = 0; i < 20; i++) await t.write(makeEntries(i * 10 + 1, 10, 1 + Math.floor(i / 10), 50));
    const before = segmentCount(dir);
    await t.log.createSnapshot(150, { voters: [1, 2, 3], learners: [] }, new Uint8Array([9]));
    await t.log.compact(150);
    expect(t.log.firstIndex()).toBe(151);
    expect(t.log.term(150)).toBe(t.log.snapshot().metadata.term);
    expect(t.log.snapshot().metadata.index).toBe(150);
    expect(() => t.log.entries(100, 160, 1 << 20)).toThrow(/compacted/);
    await t.log.idle();
    expect(segmentCount(dir)).toBeLessThan(before);
    const byOffset = await t.log.readRecords(0, { maxBytes: 1 });
    expect(byOffset[0]!.index).toBeGreaterThanOrEqual(151);
    await engine.close();

    engine = await StorageEngine.open(options);
    t = await new TestLog(engine).open('g', { mode: 'sync' });
    expect(t.log.firstIndex()).toBe(151);
    expect(t.log.lastIndex()).toBe(200);
    expect(t.log.term(150)).toBe(2);
    expect(t.log.snapshot().metadata).toEqual({
      index: 150,
      term: 2,
      confState: { voters: [1, 2, 3], learners: [] },
    });
    const rest = await t.log.readEntries(151, 201, 1 << 20);
    expect(rest.length).toBe(50);
    for (const entry of rest) expect(entryProblem(entry)).toBeNull();
    await engine.close();
  });

  it('installs a snapshot from the leader in place of the whole log', async () => {
    const dir = tempDir('install');
    dirs.push(dir);
    let engine = await StorageEngine.open({ dataDir: dir, ioThreads: 1 });
    let t = await new TestLog(engine).open('g', { mode: 'sync' });
    await t.write(makeEntries(1, 30, 1));
    const snapshot = {
      metadata: { index: 500, term: 4, confState: { voters: [1], learners: [] } },
      data: new Uint8Array([1]),
    };
    const done = new Promise<void>((resolve) => {
      engine.write([
        {
          log: t.log,
          entries: makeEntries(501, 5, 4),
          hardState: { term: 4, vote: 0, commit: 500 },
          snapshot,
          mustSync: true,
          persistId: 99,
        },
      ]);
      const timer = setInterval(() => {
        if (t.persisted.includes(99)) {
          clearInterval(timer);
          resolve();
        }
      }, 2);
    });
    expect(t.log.firstIndex()).toBe(501);
    expect(t.log.lastIndex()).toBe(505);
    await done;
    await engine.close();
    engine = await StorageEngine.open({ dataDir: dir, ioThreads: 1 });
    t = await new TestLog(engine).open('g', { mode: 'sync' });
    expect([t.log.firstIndex(), t.log.lastIndex(), t.log.term(500), t.log.term(501)]).toEqual([
      501, 505, 4, 4,
    ]);
    await engine.close();
  });

  it('memory mode comes back empty with its hard state, and says it may have lost its tail', async () => {
    const dir = tempDir('memory');
    dirs.push(dir);
    let engine = await StorageEngine.open({ dataDir: dir, ioThreads: 1 });
    let t = await new TestLog(engine).open('g', { mode: 'memory' });
    expect(t.log.mayHaveLostTail).toBe(false);
    await t.write(makeEntries(1, 10, 3), { term: 3, vote: 2, commit: 8 });
    await engine.close();
    engine = await StorageEngine.open({ dataDir: dir, ioThreads: 1 });
    t = await new TestLog(engine).open('g', { mode: 'memory' });
    expect(t.log.lastIndex()).toBe(0);
    expect(t.log.initialState().hardState).toEqual({ term: 3, vote: 2, commit: 8 });
    expect(t.log.mayHaveLostTail).toBe(true);
    let pending = false;
    try {
      t.log.entries(1, 2, 100);
    } catch (error) {
      pending = isRaftError(error, 'Unavailable');
    }
    expect(pending).toBe(true);
    await engine.close();
  });

  it('flags async logs after an unclean stop and a reboot (boot id changed), until caught up', async () => {
    const dir = tempDir('boot');
    dirs.push(dir);
    const bootIdPath = path.join(dir, 'boot_id');
    fs.writeFileSync(bootIdPath, 'boot-a\n');
    const options = { dataDir: path.join(dir, 'data'), ioThreads: 1, bootIdPath };
    let engine = await StorageEngine.open(options);
    let a = await new TestLog(engine).open('a', { mode: 'async' });
    let s = await new TestLog(engine).open('s', { mode: 'sync' });
    await a.write(makeEntries(1, 5, 1));
    await s.write(makeEntries(1, 5, 1));
    await engine.abandon(); // no clean shutdown marker
    fs.writeFileSync(bootIdPath, 'boot-b\n');
    engine = await StorageEngine.open(options);
    expect(engine.powerLossSuspected).toBe(true);
    a = await new TestLog(engine).open('a', { mode: 'async' });
    s = await new TestLog(engine).open('s', { mode: 'sync' });
    expect(a.log.mayHaveLostTail).toBe(true);
    expect(s.log.mayHaveLostTail).toBe(false);
    await engine.abandon(); // crash again before catching up: still flagged
    engine = await StorageEngine.open(options);
    expect(engine.powerLossSuspected).toBe(false);
    a = await new TestLog(engine).open('a', { mode: 'async' });
    expect(a.log.mayHaveLostTail).toBe(true);
    a.log.markCaughtUp();
    await engine.close();
    engine = await StorageEngine.open(options);
    a = await new TestLog(engine).open('a', { mode: 'async' });
    expect(a.log.mayHaveLostTail).toBe(false);
    await engine.close();
  });

  it('keeps the key-value area durable, and drops a log with its files', async () => {
    const dir = tempDir('kv');
    dirs.push(dir);
    let engine = await StorageEngine.open({ dataDir: dir, ioThreads: 1 });
    await engine.kv.put('offsets/g1/orders/0', new Uint8Array([1, 2]));
    await engine.kv.put('offsets/g1/orders/1', new Uint8Array([3]));
    await engine.kv.put('topics/orders', new Uint8Array([4]));
    const t = await new TestLog(engine).open('g', { mode: 'sync' });
    await t.write(makeEntries(1, 10, 1));
    await engine.dropLog('g');
    expect(segmentCount(dir)).toBe(0);
    await engine.close();
    engine = await StorageEngine.open({ dataDir: dir, ioThreads: 1 });
    expect([...engine.kv.entries('offsets/g1/')].map(([key, value]) => [key, [...value]])).toEqual([
      ['offsets/g1/orders/0', [1, 2]],
      ['offsets/g1/orders/1', [3]],
    ]);
    await engine.kv.remove('topics/orders');
    expect(engine.kv.get('topics/orders')).toBeUndefined();
    const fresh = await new TestLog(engine).open('g', { mode: 'sync' });
    expect(fresh.log.lastIndex()).toBe(0);
    await engine.close();
  });
  it('stores a commit-only hard state change at most every stateFlushIntervalMs, and at close', async () => {
    const dir = tempDir('lazy-state');
    dirs.push(dir);
    // What lmdb holds for the log, read through the engine's own state store.
    const stored = (engine: StorageEngine, groupId: string) => {
      const store = (engine as unknown as { store: StateStore }).store;
      return store.hardState(store.findLogId(groupId)!);
    };
    let engine = await StorageEngine.open({
      dataDir: dir,
      flushIntervalMs: 10,
      stateFlushIntervalMs: 60_000,
    });
    let fsyncs = 0;
    engine.observeFsync(() => fsyncs++);
    const t = await new TestLog(engine).open('g', { mode: 'async' });
    await t.write(makeEntries(1, 10, 2), { term: 2, vote: 1, commit: 0 });
    expect(stored(engine, 'g')).toEqual({ term: 2, vote: 1, commit: 0 }); // term changed: at once
    await waitFor(() => fsyncs > 0, 5000, 'the first async-mode fsync');
    // The next fsync comes from a background pass that started after this write.
    const seen = fsyncs;
    await t.write(makeEntries(11, 1, 2), { term: 2, vote: 1, commit: 9 });
    await waitFor(() => fsyncs > seen, 5000, 'an async-mode fsync of entry 11');
    expect(stored(engine, 'g').commit).toBe(0);
    expect(t.log.initialState().hardState.commit).toBe(9);
    await engine.close();

    engine = await StorageEngine.open({ dataDir: dir, flushIntervalMs: 10, stateFlushIntervalMs: 0 });
    const reopened = await new TestLog(engine).open('g', { mode: 'async' });
    expect(stored(engine, 'g').commit).toBe(9); // written at close
    await reopened.write([], { term: 2, vote: 1, commit: 10 });
    await waitFor(() => stored(engine, 'g').commit === 10, 5000, 'the commit stored by a background pass');
    await engine.close();
  });
});
