// The shared write-ahead file of sync mode: one fdatasync per window however many logs wrote in
// it; what was reported durable comes back from the WAL when the segment files lost every write
// they never synced; a torn or corrupt WAL tail is cut back and never replayed; checkpoints delete
// covered WAL files, and a clean close leaves none.

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageEngine } from '../../src/storage/index.js';
import { readWalRecord, WAL_HEADER_BYTES } from '../../src/storage/wal.js';
import { FaultyFileSystem } from './fault-fs.js';
import { entryProblem, makeEntries, removeDir, TestLog, tempDir, waitFor } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/** No checkpoint during a test unless it asks for one. */
const NO_CHECKPOINT = { walCheckpointIntervalMs: 600_000 };

async function openLogs(engine: StorageEngine, count: number): Promise<TestLog[]> {
  const logs: TestLog[] = [];
  for (let i = 0; i < count; i++) logs.push(await new TestLog(engine).open(`p-${i}`, { mode: 'sync' }));
  return logs;
}

/** One driver turn writing `count` entries to every log; resolves once all are durable. */
async function writeWindow(
  engine: StorageEngine,
  logs: TestLog[],
  first: number,
  count: number,
): Promise<void> {
  const prepared = logs.map((t) => t.prepare(makeEntries(first, count, 1, 100)));
  engine.write(prepared.map((p) => p.write));
  await Promise.all(prepared.map((p) => p.durable));
}

async function expectEntries(t: TestLog, lastIndex: number, where = ''): Promise<void> {
  expect(t.log.lastIndex(), `${t.log.groupId} ${where}`).toBe(lastIndex);
  const entries = [];
  // A read stops where the disk ends and the cache begins: read on from there.
  for (let lo = 1; lo <= lastIndex; lo = entries.length + 1)
    entries.push(...(await t.log.readEntries(lo, lastIndex + 1, Number.MAX_SAFE_INTEGER)));
  expect(entries.length).toBe(lastIndex);
  for (const entry of entries) expect(entryProblem(entry)).toBeNull();
}

function walFiles(dir: string): string[] {
  const walDir = path.join(dir, 'wal');
  return fs
    .readdirSync(walDir)
    .sort()
    .map((name) => path.join(walDir, name));
}

function segmentBytes(dir: string): number {
  let bytes = 0;
  const logs = path.join(dir, 'logs');
  for (const log of fs.readdirSync(logs))
    for (const name of fs.readdirSync(path.join(logs, log)))
      bytes += fs.statSync(path.join(logs, log, name)).size;
  return bytes;
}

/** Byte position of each record in a WAL file. */
function recordPositions(file: string): number[] {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const positions: number[] = [];
  for (let at = 0; at < bytes.length; ) {
    const record = readWalRecord(bytes, at);
    if (record === null) break;
    positions.push(at);
    at += WAL_HEADER_BYTES + record.frame.length;
  }
  return positions;
}

const LOGS = 32;

describe('shared WAL (sync mode)', () => {
  it(`issues one WAL fdatasync for a window that writes ${LOGS} sync logs, not ${LOGS}`, async () => {
    const dir = tempDir('wal-one-sync');
    dirs.push(dir);
    const engine = await StorageEngine.open({ dataDir: dir, ...NO_CHECKPOINT });
    const logs = await openLogs(engine, LOGS);
    await writeWindow(engine, logs, 1, 2); // creates every segment file (and the WAL file)
    const before = engine.walStats()!;
    await writeWindow(engine, logs, 3, 2);
    const after = engine.walStats()!;
    expect(after.syncs - before.syncs).toBe(1);
    expect(after.records - before.records).toBe(LOGS);
    for (const t of logs) await expectEntries(t, 4);
    await engine.close();
  });

  it('makes a window durable with one fdatasync in all (no segment file synced on the ack path)', async () => {
    const dir = tempDir('wal-fault-count');
    dirs.push(dir);
    const faulty = new FaultyFileSystem();
    const engine = await StorageEngine.open({ dataDir: dir, fileSystem: faulty, ...NO_CHECKPOINT });
    const logs = await openLogs(engine, LOGS);
    await writeWindow(engine, logs, 1, 2);
    const syncsBefore = faulty.syncCount;
    await writeWindow(engine, logs, 3, 2);
    expect(faulty.syncCount - syncsBefore).toBe(1);
    await engine.close();
  });

  it('brings back every durable write of many logs from the WAL when the segments lost every unsynced write', async () => {
    const dir = tempDir('wal-replay');
    dirs.push(dir);
    const faulty = new FaultyFileSystem();
    const engine = await StorageEngine.open({
      dataDir: dir,
      fileSystem: faulty,
      segmentBytesMax: 4096,
      ...NO_CHECKPOINT,
    });
    const logs = await openLogs(engine, LOGS);
    for (let window = 0; window < 10; window++) await writeWindow(engine, logs, window * 5 + 1, 5);
    const written = segmentBytes(dir);
    faulty.crash();
    await engine.abandon();
    faulty.powerLoss();
    // The segments lost what they never synced (all but the rolled-over files); the WAL is whole.
    expect(segmentBytes(dir)).toBeLessThan(written);
    const again = await StorageEngine.open({ dataDir: dir, segmentBytesMax: 4096, ...NO_CHECKPOINT });
    const reopened = await openLogs(again, LOGS);
    for (const t of reopened) await expectEntries(t, 50, 'after the replay');
    // The replay is durable in the segment files: a clean close deletes the WAL, and the next
    // open finds every entry in the segments alone.
    await again.close();
    expect(walFiles(dir)).toEqual([]);
    const third = await StorageEngine.open({ dataDir: dir, ...NO_CHECKPOINT });
    for (const t of await openLogs(third, LOGS)) await expectEntries(t, 50, 'from the segments alone');
    await third.close();
  });

  it('cuts a torn WAL tail back, and never replays a record whose CRC fails', async () => {
    const dir = tempDir('wal-torn');
    dirs.push(dir);
    const faulty = new FaultyFileSystem();
    const engine = await StorageEngine.open({ dataDir: dir, fileSystem: faulty, ...NO_CHECKPOINT });
    const [t] = await openLogs(engine, 1);
    for (let i = 0; i < 6; i++) await t!.write(makeEntries(i * 5 + 1, 5, 1, 60));
    faulty.crash();
    await engine.abandon();
    faulty.powerLoss(); // the segment file is empty again: only the WAL holds entries 1..30
    const [file] = walFiles(dir);
    const positions = recordPositions(file!);
    expect(positions.length).toBe(6);
    // The last record's frame data flipped (its CRC fails), then half a record of garbage after it.
    const bytes = fs.readFileSync(file!);
    bytes[bytes.length - 3]! ^= 0x40;
    fs.writeFileSync(file!, Buffer.concat([bytes, bytes.subarray(0, 30)]));
    const again = await StorageEngine.open({ dataDir: dir, ...NO_CHECKPOINT });
    expect(fs.statSync(file!).size).toBe(positions[5]); // cut back to the last whole record
    const [reopened] = await openLogs(again, 1);
    await expectEntries(reopened!, 25);
    await reopened!.write(makeEntries(26, 5, 2, 60));
    await again.close();
    const third = await StorageEngine.open({ dataDir: dir, ...NO_CHECKPOINT });
    const [last] = await openLogs(third, 1);
    await expectEntries(last!, 30);
    expect(last!.log.term(30)).toBe(2);
    await third.close();
  });

  it('deletes WAL files once a checkpoint synced the segments behind them', async () => {
    const dir = tempDir('wal-checkpoint');
    dirs.push(dir);
    const engine = await StorageEngine.open({
      dataDir: dir,
      flushIntervalMs: 10,
      walCheckpointIntervalMs: 20,
    });
    const logs = await openLogs(engine, 4);
    for (let window = 0; window < 5; window++) await writeWindow(engine, logs, window * 2 + 1, 2);
    await waitFor(
      () => (engine.walStats()?.filesDeleted ?? 0) > 0,
      10_000,
      'a checkpoint to delete a WAL file',
    );
    expect(walFiles(dir).length).toBeLessThanOrEqual(1);
    await engine.close();
    expect(walFiles(dir)).toEqual([]);
  });
});
