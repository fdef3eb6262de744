// `raftlog tail --offset @TIMESTAMP`, the built executable against a real node whose log is cut
// into many small segments: for a time before, between, on and after the records' timestamps
// (producer-given, partly out of order, as a producer's clock may be), tail starts at the first
// record at or after it, whichever segment holds it. It runs dist/: `npm run build` first.

import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster } from '../integration/process-cluster.js';
import { type BinRun, runBin } from './run-bin.js';

const RUN_TIMEOUT_MS = 15_000;
const RECORDS = 400;
// An hour ago, on a whole second: recent, so that the topic's default retention (seven days, by
// record timestamp) cuts none of the closed segments. A fixed date (it was 2026-01-01) goes stale:
// retention then drops the closed segments while the test runs, and lookups land on the new log
// start (a correct answer for what the node still holds, not the record asked for).
const BASE_MS = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
/** Record i's timestamp: rising by 10 ms, but every 7th one 25 ms behind the record before it. */
const timestampOf = (i: number) => BASE_MS + i * 10 - (i % 7 === 6 ? 35 : 0);

let cluster: ProcessCluster;
let url: string;
const segmentBytesBefore = process.env.RAFTLOG_TEST_SEGMENT_BYTES;
const retentionCheckBefore = process.env.RAFTLOG_TEST_RETENTION_CHECK_MS;

beforeAll(async () => {
  process.env.RAFTLOG_TEST_SEGMENT_BYTES = '4096'; // Read by the node processes started below.
  // Retention (the topic's default, seven days) passes often: records it would cut go before the
  // lookups, every run, not only when its 5 s timer happens to fire between two of them.
  process.env.RAFTLOG_TEST_RETENTION_CHECK_MS = '100';
  cluster = await ProcessCluster.create(1);
  cluster.startAll();
  await cluster.waitReady(20_000);
  url = cluster.node(1).url;
  expect((await raftlog(['topic', 'create', 'times', '--partitions', '1'])).code).toBe(0);
  const lines = Array.from({ length: RECORDS }, (_, i) =>
    JSON.stringify({ value: `v${i}-${'x'.repeat(60)}`, timestamp: timestampOf(i) }),
  );
  // In 8 runs, so that the log holds 8 batches or more, each about a segment's worth.
  for (let from = 0; from < RECORDS; from += RECORDS / 8) {
    const stdin = `${lines.slice(from, from + RECORDS / 8).join('\n')}\n`;
    const run = await raftlog(['produce', 'times', '--json-lines'], stdin);
    expect(run.code, run.stderr).toBe(0);
  }
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
  if (segmentBytesBefore === undefined) delete process.env.RAFTLOG_TEST_SEGMENT_BYTES;
  else process.env.RAFTLOG_TEST_SEGMENT_BYTES = segmentBytesBefore;
  if (retentionCheckBefore === undefined) delete process.env.RAFTLOG_TEST_RETENTION_CHECK_MS;
  else process.env.RAFTLOG_TEST_RETENTION_CHECK_MS = retentionCheckBefore;
});

/** Runs the executable against the test's node, to its exit. */
function raftlog(args: string[], stdin = ''): Promise<BinRun> {
  return runBin([...args, '--server', url], { stdin, timeoutMs: RUN_TIMEOUT_MS });
}

/** The offset a time lookup must land on: the first record (in offset order) at or after `ms`. */
function expectedOffset(ms: number): number | null {
  for (let i = 0; i < RECORDS; i++) if (timestampOf(i) >= ms) return i;
  return null;
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.seg'));
}

describe('raftlog tail --offset @TIMESTAMP (the executable, a real node, many segments)', () => {
  it('the log spans many segments', () => {
    expect(segmentFiles(path.resolve(cluster.nodeDataDir(1))).length).toBeGreaterThanOrEqual(5);
  });

  it('starts at the first record at or after the time, in whichever segment it is', async () => {
    const times = [
      BASE_MS - 1_000, // before every record: the first
      BASE_MS,
      timestampOf(1) - 3, // between two records
      timestampOf(6), // a record whose timestamp is below the one before it
      timestampOf(5) + 1, // past 6's own time: the next record at or after it is 7
      timestampOf(137),
      timestampOf(250) + 4,
      timestampOf(RECORDS - 1),
    ];
    for (const ms of times) {
      const run = await raftlog([
        'tail',
        'times',
        '--offset',
        `@${ms}`,
        '--count',
        '1',
        '--format',
        '%o %T\\n',
      ]);
      const offset = expectedOffset(ms)!;
      expect({ ms, code: run.code, out: run.stdout }).toEqual({
        ms,
        code: 0,
        out: `${offset} ${timestampOf(offset)}\n`,
      });
    }
  });

  it('takes an ISO 8601 time too', async () => {
    const ms = timestampOf(321);
    const run = await raftlog([
      'tail',
      'times',
      '--offset',
      `@${new Date(ms).toISOString()}`,
      '--count',
      '2',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const first = expectedOffset(ms)!;
    expect(
      run.stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line.split(' ')[0]),
    ).toEqual([`0:${first}`, `0:${first + 1}`]);
  });

  it('past the last record prints nothing and exits 0', async () => {
    const run = await raftlog(['tail', 'times', '--offset', `@${timestampOf(RECORDS - 1) + 1}`]);
    expect({ code: run.code, out: run.stdout }).toEqual({ code: 0, out: '' });
  });

  it('kept every record: the default retention, run many times meanwhile, cut nothing', async () => {
    // Else the lookups above land on the new log start, not on the record asked for.
    const response = await fetch(`${url}/v1/topics/times`);
    const topic = (await response.json()) as { partitions: { logStartOffset: number }[] };
    expect(topic.partitions.map((p) => p.logStartOffset)).toEqual([0]);
  });
});
