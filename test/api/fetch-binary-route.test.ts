// GET .../records with `accept: application/vnd.raftlog.batches` over an in-process 3-node
// cluster: the stored batches from any replica, cut by limit, maxBytes and the high watermark as
// the JSON answer is; errors stay JSON; a node without a replica relays JSON.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFetchBinary, FETCH_BINARY_CONTENT_TYPE } from '../../src/wire/fetch-binary.js';
import { InProcessApi } from './in-process-api.js';

let api: InProcessApi;
/** Offsets of the records produced, 3 requests of 4 records: 3 batches. */
const values = Array.from({ length: 12 }, (_, i) => `value-${i}`);

beforeAll(async () => {
  api = new InProcessApi(3);
  await api.start();
  expect((await api.json(1, 'POST', '/v1/topics', { name: 'bin', partitions: 1 })).status).toBe(201);
  for (let request = 0; request < 3; request++) {
    const records = values.slice(request * 4, request * 4 + 4).map((value, i) => ({
      key: i === 0 ? null : `k${i}`,
      value,
      headers: i === 1 ? { trace: 't1', empty: null } : undefined,
      partition: 0,
    }));
    expect((await api.json(2, 'POST', '/v1/topics/bin/records', { records })).status).toBe(200);
  }
}, 30_000);

afterAll(async () => {
  await api.stop();
});

async function fetchBoth(nodeId: number, query: string) {
  const url = `/v1/topics/bin/partitions/0/records?${query}`;
  const binary = await api
    .app(nodeId)
    .inject({ method: 'GET', url, headers: { accept: FETCH_BINARY_CONTENT_TYPE } });
  const json = await api.json(nodeId, 'GET', url);
  return { binary, json };
}

describe('binary fetch route', () => {
  it('gives every replica the records the JSON answer gives, cut by offset and limit', async () => {
    for (const id of [1, 2, 3]) {
      for (const query of [
        'offset=0&minOffset=11&waitMs=5000',
        'offset=5&limit=2&minOffset=11&waitMs=5000',
        'offset=3&limit=100',
      ]) {
        const { binary, json } = await fetchBoth(id, query);
        expect(binary.statusCode, binary.body).toBe(200);
        expect(binary.headers['content-type']).toBe(FETCH_BINARY_CONTENT_TYPE);
        const decoded = decodeFetchBinary(binary.rawPayload, 'bin', 0, false);
        expect(decoded.nextOffset).toBe(json.body.nextOffset);
        expect(decoded.highWatermark).toBe(json.body.highWatermark);
        expect(decoded.records.map((r) => [r.offset, r.key, r.value, r.headers, r.timestamp])).toEqual(
          json.body.records.map((r: Record<string, unknown>) => [
            r.offset,
            r.key ?? null,
            r.value,
            r.headers ?? null,
            r.timestamp,
          ]),
        );
      }
    }
    const { binary } = await fetchBoth(1, 'offset=5&limit=2');
    expect(decodeFetchBinary(binary.rawPayload, 'bin', 0, false).records.map((r) => r.value)).toEqual([
      'value-5',
      'value-6',
    ]);
  });

  it('answers whole batches within maxBytes, and always the first one', async () => {
    const { binary } = await fetchBoth(1, 'offset=0&maxBytes=1');
    const decoded = decodeFetchBinary(binary.rawPayload, 'bin', 0, false);
    expect(decoded.records.map((r) => r.offset)).toEqual([0, 1, 2, 3]);
    expect(decoded.nextOffset).toBe(4);
  });

  it('answers at the high watermark with no batches, and past it with a JSON 416', async () => {
    const { binary } = await fetchBoth(1, 'offset=12');
    expect(decodeFetchBinary(binary.rawPayload, 'bin', 0, false)).toMatchObject({
      records: [],
      nextOffset: 12,
    });
    const refused = await api.app(1).inject({
      method: 'GET',
      url: '/v1/topics/bin/partitions/0/records?offset=13',
      headers: { accept: FETCH_BINARY_CONTENT_TYPE },
    });
    expect(refused.statusCode).toBe(416);
    expect(refused.headers['content-type']).toMatch(/application\/json/);
    expect(JSON.parse(refused.body).error.code).toBe('OFFSET_OUT_OF_RANGE');
  });
});
