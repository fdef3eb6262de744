// GET /v1/topics/{topic}/partitions/{p}/offsets?timestamp=MS over an in-process 3-node cluster on
// real storage with small segments: every replica finds the first committed record at or after a
// time, across many segments (memory chunks in memory mode), with producer timestamps that go back and forth, after retention
// cut the oldest segments, and answers the high watermark with a null timestamp past the last.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskNodeStore } from '../../src/broker/disk-store.js';
import { removeDir, tempDir } from '../storage/helpers.js';
import { InProcessApi } from './in-process-api.js';

let api: InProcessApi;
let dataDir: string;

beforeAll(async () => {
  dataDir = tempDir('api-offsets');
  api = new InProcessApi(3, { timing: { retentionCheckMs: 50 } });
  // Small segments and index intervals: a few dozen requests span many segment files.
  api.cluster.openStore = (id) =>
    DiskNodeStore.open({
      dataDir: `${dataDir}/node-${id}`,
      ioThreads: 1,
      segmentBytesMax: 4096,
      indexIntervalBytes: 512,
      cacheBytesMax: 2048,
    });
  await api.start();
}, 30_000);

afterAll(async () => {
  await api.stop();
  removeDir(dataDir);
});

const BASE_MS = 1_700_000_000_000;
const REQUESTS = 40;
const RECORDS_PER_REQUEST = 3;

/** Request i's record j: a second per request, 10 ms per record; every fifth request is 7 s early. */
function timestampOf(i: number, j: number): number {
  return BASE_MS + i * 1000 + j * 10 - (i % 5 === 2 ? 7000 : 0);
}

/** Produces REQUESTS requests to partition 0; returns each offset's timestamp. */
async function produceAll(topic: string): Promise<number[]> {
  const timestamps: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const records = Array.from({ length: RECORDS_PER_REQUEST }, (_, j) => ({
      value: `${i}-${j}-${'x'.repeat(200)}`,
      partition: 0,
      timestamp: timestampOf(i, j),
    }));
    const res = await api.json((i % 3) + 1, 'POST', `/v1/topics/${topic}/records`, { records });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.offsets[0].offset).toBe(timestamps.length);
    for (const record of records) timestamps.push(record.timestamp);
  }
  return timestamps;
}

/** Waits until node `id` has committed every produced record; returns its log start offset. */
async function caughtUp(id: number, topic: string, count: number): Promise<number> {
  const res = await api.json(
    id,
    'GET',
    `/v1/topics/${topic}/partitions/0/records?minOffset=${count - 1}&waitMs=5000&limit=1`,
  );
  expect(res.status).toBe(200);
  expect(res.body.highWatermark).toBe(count);
  return res.body.logStartOffset;
}

function expected(timestamps: readonly number[], from: number, timestampMs: number) {
  for (let offset = from; offset < timestamps.length; offset++)
    if (timestamps[offset]! >= timestampMs) return { offset, timestamp: timestamps[offset]! };
  return { offset: timestamps.length, timestamp: null };
}

/** Times to look up: each record's own, one ms either side, and before and after them all. */
function timesToLookUp(timestamps: readonly number[]): number[] {
  const times = [0, BASE_MS - 10_000, BASE_MS + 1_000_000];
  for (const t of timestamps) times.push(t - 1, t, t + 1);
  return times;
}

async function lookUp(id: number, topic: string, timestampMs: number) {
  const res = await api.json(id, 'GET', `/v1/topics/${topic}/partitions/0/offsets?timestamp=${timestampMs}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { offset: number; timestamp: number | null };
}

describe('offset for a time', () => {
  for (const persistence of ['async', 'memory'] as const) {
    it(`${persistence}: every replica finds the first record at or after a time, across segments`, async () => {
      const topic = `times-${persistence}`;
      expect(
        (
          await api.json(1, 'POST', '/v1/topics', {
            name: topic,
            config: { persistence: 'async', retentionMs: -1 },
          })
        ).status,
      ).toBe(201);
      const timestamps = await produceAll(topic);
      const groupId = api.cluster.nodes.get(1)!.findTopic(topic)!.partitions[0]!.groupId;
      for (const id of [1, 2, 3]) {
        expect(await caughtUp(id, topic, timestamps.length)).toBe(0);
        const segments = api.cluster.nodes.get(id)!.localPartition(groupId)!.group.store.segmentSummaries!();
        expect(segments.length).toBeGreaterThan(5);
        for (const t of timesToLookUp(timestamps)) {
          expect(await lookUp(id, topic, t), `node ${id}, time ${t}`).toEqual(expected(timestamps, 0, t));
        }
      }
      // Past every record: the next offset to be written, no timestamp.
      expect(await lookUp(2, topic, BASE_MS + 1_000_000)).toEqual({
        offset: REQUESTS * RECORDS_PER_REQUEST,
        timestamp: null,
      });
    });
  }

  it('after retention cut the oldest segments, answers from what is retained', async () => {
    const config = { persistence: 'async', retentionMs: -1, retentionBytes: 8192 };
    expect((await api.json(1, 'POST', '/v1/topics', { name: 'times-cut', config })).status).toBe(201);
    const timestamps = await produceAll('times-cut');
    for (const id of [1, 2, 3]) {
      await caughtUp(id, 'times-cut', timestamps.length);
      const start = async () => await caughtUp(id, 'times-cut', timestamps.length);
      let logStart = await start();
      const deadline = Date.now() + 10_000;
      while (logStart === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        logStart = await start();
      }
      expect(logStart).toBeGreaterThan(0);
      for (const t of timesToLookUp(timestamps)) {
        const answer = await lookUp(id, 'times-cut', t);
        // Retention may cut again between reads: check against the log start on both sides.
        const after = await start();
        const fits = [logStart, after].some((from) => {
          const want = expected(timestamps, from, t);
          return answer.offset === want.offset && answer.timestamp === want.timestamp;
        });
        expect(
          fits,
          `node ${id}, time ${t}: ${JSON.stringify(answer)}, log start ${logStart}..${after}`,
        ).toBe(true);
        logStart = after;
      }
    }
  });

  it('refuses bad input with the contract codes', async () => {
    const url = '/v1/topics/times-async/partitions/0/offsets';
    for (const query of [
      '',
      '?timestamp=abc',
      '?timestamp=-1',
      '?timestamp=1.5',
      '?timestamp=01',
      '?timestamp=1e3',
      '?timestamp=1&offset=2',
      '?timestamp=99999999999999999',
    ]) {
      const res = await api.json(1, 'GET', `${url}${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code, query).toBe('INVALID_REQUEST');
    }
    const unknownTopic = await api.json(2, 'GET', '/v1/topics/nope/partitions/0/offsets?timestamp=1');
    expect(unknownTopic.status).toBe(404);
    expect(unknownTopic.body.error.code).toBe('UNKNOWN_TOPIC');
    const unknownPartition = await api.json(
      3,
      'GET',
      '/v1/topics/times-async/partitions/7/offsets?timestamp=1',
    );
    expect(unknownPartition.status).toBe(404);
    expect(unknownPartition.body.error.code).toBe('UNKNOWN_PARTITION');
  });
});
