// Corruption on disk: a torn or corrupt last frame is cut back on open; a bad frame with good
// ones after it is refused, naming the file and byte offset; a read never returns a bad entry.
// Files covered by their stored index (the recovery point) are not read at open: the background
// scrub finds what rotted in them while the node was down. And an open reads nothing after a
// clean close, only the last segment after a crash.

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isStorageError, StorageEngine, type StorageError } from '../../src/storage/index.js';
import { entryProblem, makeEntries, removeDir, TestLog, tempDir } from './helpers.js';
import { framePositions } from './segment-files.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

const ENGINE = { ioThreads: 1, segmentBytesMax: 1024 * 1024 };

/**
 * Writes 10 frames of 5 entries (indexes 1..50) in sync mode and closes; or, with `crash`, in
 * async mode and stops as a process crash would (the open then reads the file: no recovery point
 * covers the last segment).
 */
async function writeLog(dir: string, crash = false): Promise<void> {
  const engine = await StorageEngine.open({ dataDir: dir, ...ENGINE });
  const t = await new TestLog(engine).open('g', { mode: crash ? 'async' : 'sync' });
  for (let i = 0; i < 10; i++) await t.write(makeEntries(i * 5 + 1, 5, 1, 40));
  if (crash) await engine.abandon();
  else await engine.close();
}

function segmentFiles(dir: string): string[] {
  const logs = path.join(dir, 'logs');
  const files: string[] = [];
  for (const log of fs.readdirSync(logs)) {
    for (const name of fs.readdirSync(path.join(logs, log)).sort()) files.push(path.join(logs, log, name));
  }
  return files;
}

function flipBit(file: string, position: number): void {
  const bytes = fs.readFileSync(file);
  bytes[position]! ^= 0x10;
  fs.writeFileSync(file, bytes);
}

async function reopen(dir: string): Promise<{ engine: StorageEngine; t: TestLog }> {
  const engine = await StorageEngine.open({ dataDir: dir, ...ENGINE });
  const t = await new TestLog(engine).open('g', { mode: 'sync' });
  return { engine, t };
}

async function expectIntact(t: TestLog, lastIndex: number): Promise<void> {
  expect(t.log.lastIndex()).toBe(lastIndex);
  const entries = await t.log.readEntries(1, lastIndex + 1, Number.MAX_SAFE_INTEGER);
  expect(entries.length).toBe(lastIndex);
  for (const entry of entries) expect(entryProblem(entry)).toBeNull();
}

describe('recovery from corruption', () => {
  it('cuts a truncated tail back to the last whole frame, and appends after it', async () => {
    const dir = tempDir('torn');
    dirs.push(dir);
    await writeLog(dir);
    const [file] = segmentFiles(dir);
    const positions = framePositions(file!);
    fs.truncateSync(file!, positions[9]! + 20); // the last frame, cut inside its header+data
    const { engine, t } = await reopen(dir);
    await expectIntact(t, 45);
    // The cut frame had been synced (a clean close): it may have been acknowledged.
    expect(t.log.mayHaveLostTail).toBe(true);
    await t.write(makeEntries(46, 5, 2, 40));
    await engine.close();
    const again = await reopen(dir);
    await expectIntact(again.t, 50);
    expect(again.t.log.term(46)).toBe(2);
    await again.engine.close();
  });

  it('cuts a flipped bit in the last frame back to the frame before it', async () => {
    const dir = tempDir('lastbit');
    dirs.push(dir);
    await writeLog(dir, true);
    const [file] = segmentFiles(dir);
    const positions = framePositions(file!);
    flipBit(file!, positions[9]! + 100);
    const { engine, t } = await reopen(dir);
    await expectIntact(t, 45);
    expect(fs.statSync(file!).size).toBe(positions[9]);
    // A synced frame rotted: the replica must rejoin as one that may have lost acknowledged entries.
    expect(t.log.mayHaveLostTail).toBe(true);
    await engine.close();
  });

  it('refuses a flipped bit in an earlier frame, naming the file and byte offset', async () => {
    const dir = tempDir('earlybit');
    dirs.push(dir);
    await writeLog(dir, true);
    const [file] = segmentFiles(dir);
    const positions = framePositions(file!);
    flipBit(file!, positions[4]! + 60);
    const engine = await StorageEngine.open({ dataDir: dir, ...ENGINE });
    const error = await engine.openLog('g', { mode: 'sync' }).then(
      () => null,
      (e: unknown) => e as StorageError,
    );
    expect(isStorageError(error, 'CorruptLog')).toBe(true);
    expect(error!.file).toBe(file);
    expect(error!.offsetBytes).toBe(positions[4]);
    expect(error!.message).toContain(`byte ${positions[4]}`);
    await engine.close();
  });

  it('reads no file after a clean close, only the last segment after a crash', async () => {
    const dir = tempDir('recovery-point');
    dirs.push(dir);
    const options = { dataDir: dir, ioThreads: 1, segmentBytesMax: 4096, scrubBytesPerSecond: 0 };
    let engine = await StorageEngine.open(options);
    let t = await new TestLog(engine).open('g', { mode: 'async' });
    for (let i = 0; i < 30; i++) await t.write(makeEntries(i * 5 + 1, 5, 1, 100));
    await engine.close();
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThan(2);

    engine = await StorageEngine.open(options);
    t = await new TestLog(engine).open('g', { mode: 'async' });
    expect(engine.recoveryStats().scannedBytes).toBe(0);
    await expectIntact(t, 150);
    expect(t.log.term(150)).toBe(1);
    await t.write(makeEntries(151, 5, 2, 100));
    await t.log.idle();
    await engine.abandon(); // a crash: the last segment is past the recovery point

    const last = segmentFiles(dir).at(-1)!;
    engine = await StorageEngine.open(options);
    t = await new TestLog(engine).open('g', { mode: 'async' });
    expect(engine.recoveryStats().scannedBytes).toBe(fs.statSync(last).size);
    await expectIntact(t, 155);
    expect(t.log.term(150)).toBe(1);
    expect(t.log.term(155)).toBe(2);
    await engine.close();
  });

  for (const shutdown of ['clean', 'crash'] as const) {
    it(`the background scrub finds a flipped bit in a sealed segment (${shutdown} shutdown before)`, async () => {
      const dir = tempDir('sealed');
      dirs.push(dir);
      const options = { dataDir: dir, ioThreads: 1, segmentBytesMax: 4096 };
      let engine = await StorageEngine.open(options);
      const t = await new TestLog(engine).open('g', { mode: 'async' });
      for (let i = 0; i < 30; i++) await t.write(makeEntries(i * 5 + 1, 5, 1, 100));
      await t.log.idle();
      if (shutdown === 'clean') await engine.close();
      else await engine.abandon();
      const files = segmentFiles(dir);
      expect(files.length).toBeGreaterThan(2);
      const positions = framePositions(files[0]!);
      flipBit(files[0]!, positions.at(-1)! + 50); // the LAST frame of a sealed segment

      // The open takes the file from its index; the scrub reads it and fails the log.
      engine = await StorageEngine.open({ ...options, scrubDelayMs: 0 });
      const errors: StorageError[] = [];
      await new TestLog(engine).open('g', { mode: 'async', onError: (error) => errors.push(error) });
      await engine.scrubIdle();
      expect(errors.length).toBe(1);
      expect(isStorageError(errors[0], 'CorruptLog')).toBe(true);
      expect(errors[0]!.file).toBe(files[0]);
      expect(errors[0]!.offsetBytes).toBe(positions.at(-1));
      await engine.close();

      // The indexes are forgotten: the next open reads the files and refuses the log there too.
      engine = await StorageEngine.open(options);
      const error = await engine.openLog('g', { mode: 'async' }).then(
        () => null,
        (e: unknown) => e as StorageError,
      );
      expect(isStorageError(error, 'CorruptLog')).toBe(true);
      expect(error!.file).toBe(files[0]);
      expect(error!.offsetBytes).toBe(positions.at(-1));
      await engine.close();
    });
  }

  it('never returns a corrupt entry: a frame that rots after open fails the read', async () => {
    const dir = tempDir('rot');
    dirs.push(dir);
    await writeLog(dir);
    const { engine, t } = await reopen(dir);
    const [file] = segmentFiles(dir);
    const positions = framePositions(file!);
    flipBit(file!, positions[2]! + 80); // entries 11..15, not in the cache after a reopen
    const error = await t.log.readEntries(11, 16, Number.MAX_SAFE_INTEGER).then(
      () => null,
      (e: unknown) => e as StorageError,
    );
    expect(isStorageError(error, 'CorruptRead')).toBe(true);
    expect(error!.file).toBe(file);
    expect(error!.offsetBytes).toBe(positions[2]);
    const byOffset = await t.log.readRecords(10, { maxBytes: 100 }).then(
      () => null,
      (e: unknown) => e as StorageError,
    );
    expect(isStorageError(byOffset, 'CorruptRead')).toBe(true);
    const good = await t.log.readEntries(16, 51, Number.MAX_SAFE_INTEGER);
    for (const entry of good) expect(entryProblem(entry)).toBeNull();
    await engine.close();
    // The failed read forgot the file's stored index: the next open reads it and refuses the log.
    const again = await StorageEngine.open({ dataDir: dir, ...ENGINE });
    const atOpen = await again.openLog('g', { mode: 'sync' }).then(
      () => null,
      (e: unknown) => e as StorageError,
    );
    expect(isStorageError(atOpen, 'CorruptLog')).toBe(true);
    expect(atOpen!.offsetBytes).toBe(positions[2]);
    await again.close();
  });
});
