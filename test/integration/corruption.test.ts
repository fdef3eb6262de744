// A replica whose log is corrupt before its tail: storage sets the files aside and restarts the
// log empty at its snapshot, flagged as having lost entries (unit level), and on a real 3-node
// cluster the node starts, its background scrub finds the bit flipped in a sealed segment while it
// was down, it logs the corruption, rebuilds the replica from its peers and serves exactly what
// was produced, never the corrupt bytes. (A read of a frame that rots after open
// is refused by CRC: test/storage/recovery.test.ts, "never returns a corrupt entry".)

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isStorageError, StorageEngine, type StorageError } from '../../src/storage/index.js';
import { makeEntries, removeDir, TestLog, tempDir } from '../storage/helpers.js';
import { framePositions } from '../storage/segment-files.js';
import { eventually, type HttpResult, ProcessCluster } from './process-cluster.js';

const SEGMENT_BYTES = 4096;

function segmentFilesOf(directory: string): string[] {
  return fs
    .readdirSync(directory)
    .filter((name) => name.endsWith('.seg'))
    .sort((a, b) => Number(a.split('-')[2]!.split('.')[0]) - Number(b.split('-')[2]!.split('.')[0]))
    .map((name) => path.join(directory, name));
}

/** Flips one bit in the middle frame of `file` (never its last frame); returns that frame's position. */
function corruptMiddleFrame(file: string): number {
  const positions = framePositions(file);
  expect(positions.length).toBeGreaterThan(2);
  const frame = positions[Math.floor(positions.length / 2) - 1]!;
  const bytes = fs.readFileSync(file);
  bytes[frame + 40]! ^= 0x10;
  fs.writeFileSync(file, bytes);
  return frame;
}

describe('a log that refuses to open is set aside and restarts empty (storage)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) removeDir(dir);
  });

  it('keeps term, vote and snapshot; flags the lost tail; moves the files aside', async () => {
    const dir = tempDir('discard');
    dirs.push(dir);
    const options = { dataDir: dir, ioThreads: 1, segmentBytesMax: SEGMENT_BYTES };
    let engine = await StorageEngine.open(options);
    let t = await new TestLog(engine).open('7', { mode: 'sync' });
    for (let i = 0; i < 30; i++) await t.write(makeEntries(i * 5 + 1, 5, 2, 100));
    await t.write([], { term: 3, vote: 2, commit: 150 });
    await t.log.createSnapshot(20, { voters: [1, 2, 3], learners: [] }, new Uint8Array([42]));
    await t.log.compact(20);
    await t.log.idle();
    expect(t.log.segmentSummaries().length).toBeGreaterThan(2);
    expect(t.log.segmentSummaries().every((s) => s.lastIndex >= 21 && s.sizeBytes > 0)).toBe(true);
    await engine.close();

    const logDirectory = path.join(dir, 'logs', fs.readdirSync(path.join(dir, 'logs'))[0]!);
    const files = segmentFilesOf(logDirectory);
    const position = corruptMiddleFrame(files[0]!);
    // A clean close stored every file's index: the open reads none, the background scrub finds it.
    engine = await StorageEngine.open({ ...options, scrubDelayMs: 0 });
    const errors: StorageError[] = [];
    await new TestLog(engine).open('7', { mode: 'sync', onError: (e) => errors.push(e) });
    await engine.scrubIdle();
    const error = errors[0];
    expect(isStorageError(error, 'CorruptLog')).toBe(true);
    expect(error!.file).toBe(files[0]);
    expect(error!.offsetBytes).toBe(position);

    const aside = await engine.discardLog('7');
    expect(aside).not.toBeNull();
    expect(fs.readdirSync(aside!).sort()).toEqual(files.map((f) => path.basename(f)).sort());
    t = await new TestLog(engine).open('7', { mode: 'sync' });
    expect(t.log.mayHaveLostTail).toBe(true);
    expect(t.log.firstIndex()).toBe(21);
    expect(t.log.lastIndex()).toBe(20);
    expect(t.log.snapshot().metadata.index).toBe(20);
    expect([...t.log.snapshot().data]).toEqual([42]);
    expect(t.log.initialState().hardState).toEqual({ term: 3, vote: 2, commit: 150 });
    expect(t.log.segmentSummaries()).toEqual([]);
    // It takes the leader's entries again from the snapshot on, and survives a reopen.
    await t.write(makeEntries(21, 5, 3, 100));
    await engine.close();
    engine = await StorageEngine.open(options);
    t = await new TestLog(engine).open('7', { mode: 'sync' });
    expect(t.log.lastIndex()).toBe(25);
    expect(t.log.mayHaveLostTail).toBe(true); // until the broker says it caught up
    await engine.close();
  });
});

describe('a corrupt replica on a real 3-node cluster', () => {
  const savedSegmentBytes = process.env.RAFTLOG_TEST_SEGMENT_BYTES;
  let cluster: ProcessCluster | null = null;
  afterAll(async () => {
    await cluster?.destroy();
    if (savedSegmentBytes === undefined) delete process.env.RAFTLOG_TEST_SEGMENT_BYTES;
    else process.env.RAFTLOG_TEST_SEGMENT_BYTES = savedSegmentBytes;
  });

  async function fetchAll(c: ProcessCluster, nodeId: number): Promise<HttpResult> {
    return c.request(nodeId, 'GET', '/v1/topics/c/partitions/0/records?offset=0&limit=10000');
  }

  it('starts, names the corruption, rebuilds from its peers and serves only what was produced', async () => {
    // Test-only knob read by startServer: small segments, so the log spans several files.
    process.env.RAFTLOG_TEST_SEGMENT_BYTES = String(SEGMENT_BYTES);
    const c = await ProcessCluster.create(3, 'sync');
    cluster = c;
    c.startAll();
    await c.waitReady();
    const created = await c.request(1, 'POST', '/v1/topics', {
      name: 'c',
      partitions: 1,
      replicationFactor: 3,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);

    const values: string[] = [];
    const produce = async (batches: number) => {
      for (let b = 0; b < batches; b++) {
        const records = Array.from({ length: 4 }, (_, i) => ({
          value: `v${values.length + i}-${'y'.repeat(90)}`,
        }));
        let res: HttpResult;
        const deadline = Date.now() + 10_000;
        do {
          res = await c.request(1 + (b % 3), 'POST', '/v1/topics/c/records', { records, timeoutMs: 2000 });
        } while (res.status !== 200 && [0, 503, 504].includes(res.status) && Date.now() < deadline);
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        expect(res.body.offsets[0].offset).toBe(values.length);
        values.push(...records.map((r) => r.value));
      }
    };
    await produce(60); // about 26 KiB: several 4 KiB segments

    const leader = (await c.request(1, 'GET', '/v1/topics/c')).body.partitions[0].leader as number;
    const victim = [1, 2, 3].find((id) => id !== leader)!;
    await eventually(
      async () => (await fetchAll(c, victim)).body?.highWatermark === values.length,
      10_000,
      `node ${victim} did not replicate everything before the kill`,
    );
    await c.kill(victim, 'SIGKILL');

    // The partition's log is the biggest one on that node (the metadata log is tiny).
    const logsDir = path.join(c.dataDir, `node-${victim}`, 'logs');
    const logDirs = fs.readdirSync(logsDir).map((name) => path.join(logsDir, name));
    const sizeOf = (d: string) => segmentFilesOf(d).reduce((sum, f) => sum + fs.statSync(f).size, 0);
    const partitionLog = logDirs.sort((a, b) => sizeOf(b) - sizeOf(a))[0]!;
    const files = segmentFilesOf(partitionLog);
    expect(files.length).toBeGreaterThan(2);
    const corruptFile = files[1]!; // closed: later segments follow it
    const corruptAt = corruptMiddleFrame(corruptFile);

    c.start(victim);
    await c.waitReady(30_000);
    const output = () => c.node(victim).output.join('');
    await eventually(
      async () => output().includes('corrupt log'),
      10_000,
      `node ${victim} did not log the corruption: ${c.tails([victim])}`,
    );
    const logLine = output()
      .split('\n')
      .find((line) => line.includes('corrupt log'))!;
    const logged = JSON.parse(logLine) as { file: string; offsetBytes: number; movedTo: string };
    expect(logged.file).toBe(corruptFile);
    expect(logged.offsetBytes).toBe(corruptAt);
    expect(fs.existsSync(path.join(logged.movedTo, path.basename(corruptFile)))).toBe(true);

    // It catches up from the leader: same high watermark, and every record equals what was produced.
    await produce(5);
    await eventually(
      async () => {
        const [mine, leaders] = await Promise.all([fetchAll(c, victim), fetchAll(c, leader)]);
        return mine.status === 200 && mine.body.highWatermark === leaders.body.highWatermark;
      },
      20_000,
      `node ${victim} did not catch up: ${c.tails([victim])}`,
    );
    const fetched = await fetchAll(c, victim);
    expect(fetched.body.highWatermark).toBe(values.length);
    expect(fetched.body.logStartOffset).toBe(0);
    const records = fetched.body.records as Array<{ offset: number; value: string }>;
    expect(records.map((r) => r.offset)).toEqual(values.map((_, i) => i));
    expect(records.map((r) => r.value)).toEqual(values);
    await eventually(
      async () => output().includes('caught up after a restart that lost the log'),
      10_000,
      `node ${victim} never left recovering: ${c.tails([victim])}`,
    );
  }, 120_000);
});
