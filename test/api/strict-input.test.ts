// Strict input (issue 13), over real sockets to a 3-node in-process cluster: what was sent is
// stored exactly, or refused with a coded 400 (416 for a group offset past the high watermark)
// that names the field. One test per row of the table that concerns values.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpAnswer, ListeningCluster } from './listening-cluster.js';

const api = new ListeningCluster(3);
/** Records produced to t/0 in beforeAll: its high watermark. */
const T0_RECORDS = 3;

beforeAll(async () => {
  await api.start();
  expect((await api.json(1, 'POST', '/v1/topics', { name: 't', partitions: 2 })).status).toBe(201);
  const records = Array.from({ length: T0_RECORDS }, (_, i) => ({ value: `r${i}`, partition: 0 }));
  expect((await api.json(1, 'POST', '/v1/topics/t/records', { records })).status).toBe(200);
}, 30_000);

afterAll(async () => {
  await api.stop();
});

function expectRefused(answer: HttpAnswer, field: string, code = 'INVALID_REQUEST', status = 400): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.body.error.code, answer.text).toBe(code);
  expect(answer.body.error.message, answer.text).toContain(field);
}

/** A produce of one record, its JSON written by hand (the point is what JSON.stringify can't write). */
function produceRaw(nodeId: number, recordJson: string | Uint8Array, topic = 't'): Promise<HttpAnswer> {
  const body =
    typeof recordJson === 'string'
      ? `{"records": [${recordJson}]}`
      : Buffer.concat([Buffer.from('{"records": ['), recordJson, Buffer.from(']}')]);
  return api.call(nodeId, { method: 'POST', path: `/v1/topics/${topic}/records`, body });
}

async function highWatermark(topic: string, partition: number): Promise<number> {
  const answer = await api.json(
    1,
    'GET',
    `/v1/topics/${topic}/partitions/${partition}/records?offset=latest`,
  );
  return answer.body.highWatermark;
}

async function fetchOne(topic: string, partition: number, offset: number) {
  const answer = await api.json(
    2,
    'GET',
    `/v1/topics/${topic}/partitions/${partition}/records?offset=${offset}&limit=1&minOffset=${offset}&waitMs=5000`,
  );
  expect(answer.status, answer.text).toBe(200);
  return answer.body.records[0];
}

describe('integers in paths and queries are canonical decimal', () => {
  const badPartitions = [
    '%20',
    '0x1',
    '1e0',
    '01',
    '+1',
    '%2B1',
    '-0',
    '1.0',
    '%201',
    '1%20',
    '2147483648',
    '-1',
  ];

  it('refuses a loosely written partition number in the path, on every partition route', async () => {
    for (const segment of badPartitions) {
      for (const path of [
        `/v1/topics/t/partitions/${segment}/records`,
        `/v1/topics/t/partitions/${segment}/stream`,
      ]) {
        expectRefused(await api.call(1, { method: 'GET', path }), 'params/partition');
      }
      const transfer = await api.json(2, 'POST', `/v1/topics/t/partitions/${segment}/leader`, { node: 1 });
      expectRefused(transfer, 'params/partition');
    }
    // The canonical forms still work.
    expect((await api.json(1, 'GET', '/v1/topics/t/partitions/0/records')).body.records).toHaveLength(3);
    expect((await api.json(1, 'GET', '/v1/topics/t/partitions/1/records')).status).toBe(200);
  });

  it('refuses loosely written query numbers, naming the parameter', async () => {
    const cases: Array<[string, string]> = [
      ['limit=01', 'querystring/limit'],
      ['limit=1e0', 'querystring/limit'],
      ['limit=%201', 'querystring/limit'],
      ['limit=1.0', 'querystring/limit'],
      ['maxBytes=0x10', 'querystring/maxBytes'],
      ['maxBytes=%2B100', 'querystring/maxBytes'],
      ['waitMs=-0', 'querystring/waitMs'],
      ['waitMs=', 'querystring/waitMs'],
      ['minOffset=9007199254740992', 'querystring/minOffset'],
      ['minOffset=1e3', 'querystring/minOffset'],
      ['offset=01', 'querystring/offset'],
      ['offset=%201', 'querystring/offset'],
      ['offset=1.0', 'querystring/offset'],
      ['offset=-0', 'querystring/offset'],
      ['offset=9007199254740992', 'querystring/offset'],
      ['offset=9223372036854775808', 'querystring/offset'],
    ];
    for (const [query, field] of cases) {
      expectRefused(await api.json(3, 'GET', `/v1/topics/t/partitions/0/records?${query}`), field);
    }
    for (const query of ['offset=01', 'offset=1e0', 'offset=9007199254740992']) {
      expectRefused(await api.json(3, 'GET', `/v1/topics/t/stream?${query}`), 'querystring/offset');
    }
    const fine = await api.json(3, 'GET', '/v1/topics/t/partitions/0/records?offset=1&limit=1&maxBytes=100');
    expect(fine.body.records.map((r: { offset: number }) => r.offset)).toEqual([1]);
  });
});

describe('group offsets', () => {
  it('refuses 2^63 instead of storing it rounded', async () => {
    const body = '{"offsets": [{"topic": "t", "partition": 0, "offset": 9223372036854775808}]}';
    for (const id of [1, 2, 3]) {
      const answer = await api.call(id, { method: 'PUT', path: '/v1/groups/g63/offsets', body });
      expectRefused(answer, 'body/offsets/0/offset');
    }
    expect((await api.json(2, 'GET', '/v1/groups/g63/offsets')).body.offsets).toEqual([]);
  });

  it('refuses an offset past the high watermark with 416 and both bounds; keeps one at it', async () => {
    for (const offset of [T0_RECORDS + 1, 1_000_000, Number.MAX_SAFE_INTEGER]) {
      for (const id of [1, 2, 3]) {
        const answer = await api.json(id, 'PUT', '/v1/groups/ghw/offsets', {
          offsets: [
            { topic: 't', partition: 1, offset: 0 },
            { topic: 't', partition: 0, offset },
          ],
        });
        expectRefused(answer, 'body/offsets/1/offset', 'OFFSET_OUT_OF_RANGE', 416);
        expect(answer.body.error).toMatchObject({
          topic: 't',
          partition: 0,
          highWatermark: T0_RECORDS,
          logStartOffset: 0,
        });
      }
    }
    // All or nothing: the valid entry beside it was not committed either.
    expect((await api.json(3, 'GET', '/v1/groups/ghw/offsets')).body.offsets).toEqual([]);
    const atHighWatermark = await api.json(2, 'PUT', '/v1/groups/ghw/offsets', {
      offsets: [{ topic: 't', partition: 0, offset: T0_RECORDS }],
    });
    expect(atHighWatermark.status, atHighWatermark.text).toBe(204);
    expect((await api.json(3, 'GET', '/v1/groups/ghw/offsets')).body.offsets).toEqual([
      { topic: 't', partition: 0, offset: T0_RECORDS },
    ]);
  });

  it('accepts an offset the node only learns is written by asking the partition', async () => {
    // Produce through one node and commit through another at once: whichever node proposes may
    // not have heard of the new records yet, and must ask rather than refuse.
    for (let round = 0; round < 5; round++) {
      const produced = await api.json(1 + (round % 3), 'POST', '/v1/topics/t/records', {
        records: [{ value: `late-${round}`, partition: 1 }],
      });
      const next = produced.body.offsets[0].offset + 1;
      const commit = await api.json(1 + ((round + 1) % 3), 'PUT', '/v1/groups/glate/offsets', {
        offsets: [{ topic: 't', partition: 1, offset: next }],
      });
      expect(commit.status, commit.text).toBe(204);
    }
  });

  it('asks the replica on another node when the proposing node holds none', async () => {
    const metadataLeader = [...api.cluster.nodes].find(([, node]) => node.isMetadataLeader())![0];
    // Single-replica topics are placed round-robin: one of three lands off the metadata leader.
    let name = '';
    for (const candidate of ['solo-a', 'solo-b', 'solo-c']) {
      const created = await api.json(1, 'POST', '/v1/topics', { name: candidate, replicationFactor: 1 });
      expect(created.status, created.text).toBe(201);
      if (created.body.partitions[0].replicas[0] !== metadataLeader) name = candidate;
    }
    expect(name).not.toBe('');
    for (let round = 0; round < 3; round++) {
      // Right after the produce, the metadata leader's view (the replica's announcements) lags.
      const produced = await api.json(1, 'POST', `/v1/topics/${name}/records`, { records: [{ value: 'x' }] });
      const next = produced.body.offsets[0].offset + 1;
      const past = await api.json(metadataLeader, 'PUT', '/v1/groups/gsolo/offsets', {
        offsets: [{ topic: name, partition: 0, offset: next + 1 }],
      });
      expectRefused(past, 'body/offsets/0/offset', 'OFFSET_OUT_OF_RANGE', 416);
      expect(past.body.error.highWatermark).toBe(next);
      const at = await api.json(metadataLeader, 'PUT', '/v1/groups/gsolo/offsets', {
        offsets: [{ topic: name, partition: 0, offset: next }],
      });
      expect(at.status, at.text).toBe(204);
    }
  });

  it('answers INVALID_TOPIC_NAME for a group commit naming topic ../x', async () => {
    for (const id of [1, 2, 3]) {
      const answer = await api.json(id, 'PUT', '/v1/groups/gname/offsets', {
        offsets: [{ topic: '../x', partition: 0, offset: 0 }],
      });
      expectRefused(answer, 'body/offsets/0/topic', 'INVALID_TOPIC_NAME');
      const read = await api.json(id, 'GET', '/v1/groups/gname/offsets?topic=..%2Fx');
      expect(read.status, read.text).toBe(400);
      expect(read.body.error.code).toBe('INVALID_TOPIC_NAME');
    }
  });
});

describe('record timestamps', () => {
  it('refuses timestamps beyond 2^53, beyond 2^63, in exponent form, or outside 0..year 9999', async () => {
    const before = await highWatermark('t', 0);
    for (const timestamp of [
      '1e20',
      '9223372036854775808',
      '9007199254740993',
      '1.5',
      '1.0',
      '-0',
      '-1',
      '253402300800000',
    ]) {
      const answer = await produceRaw(1, `{"value": "v", "partition": 0, "timestamp": ${timestamp}}`);
      expectRefused(answer, 'body/records/0/timestamp');
    }
    expect(await highWatermark('t', 0)).toBe(before);
  });

  it('stores a timestamp at either end of the window exactly', async () => {
    for (const timestamp of [0, 253_402_300_799_999]) {
      const answer = await produceRaw(2, `{"value": "edge", "partition": 0, "timestamp": ${timestamp}}`);
      expect(answer.status, answer.text).toBe(200);
      const record = await fetchOne('t', 0, answer.body.offsets[0].offset);
      expect(record.timestamp).toBe(timestamp);
    }
  });
});

describe('text is well-formed Unicode', () => {
  const invalidUtf8: Array<[string, number[]]> = [
    ['a lone continuation byte', [0x80]],
    ['0xff', [0xff, 0xfe]],
    ['an overlong encoding of "/"', [0xc0, 0xaf]],
    ['a UTF-8 encoded surrogate (CESU-8)', [0xed, 0xa0, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ];

  it('refuses a value with invalid UTF-8 bytes, sent to the leader or to a node that forwards', async () => {
    const { leader, follower } = await api.leaderAndFollower('t', 0);
    const before = await highWatermark('t', 0);
    for (const id of [leader, follower]) {
      for (const [what, bytes] of invalidUtf8) {
        const record = Buffer.concat([
          Buffer.from('{"value": "ok '),
          Buffer.from(bytes),
          Buffer.from('", "partition": 0}'),
        ]);
        const answer = await produceRaw(id, record);
        expectRefused(answer, 'body/records/0/value');
        expect(answer.body.error.message, what).toContain('base64');
      }
    }
    expect(await highWatermark('t', 0)).toBe(before);
  });

  it('refuses a lone surrogate escape anywhere, sent to the leader or forwarded', async () => {
    const { leader, follower } = await api.leaderAndFollower('t', 0);
    const before = await highWatermark('t', 0);
    const cases: Array<[string, string]> = [
      ['{"value": "\\ud800", "partition": 0}', 'body/records/0/value'],
      ['{"value": "x\\udc00y", "partition": 0}', 'body/records/0/value'],
      ['{"value": "\\ud83d", "partition": 0}', 'body/records/0/value'],
      ['{"value": "\\ud83d\\u0041", "partition": 0}', 'body/records/0/value'],
      ['{"value": "\\ude80\\ud83d", "partition": 0}', 'body/records/0/value'],
      ['{"value": "v", "key": "\\uD800", "partition": 0}', 'body/records/0/key'],
      ['{"value": "v", "headers": {"h": "\\udfff"}, "partition": 0}', 'body/records/0/headers/h'],
      [
        '{"value": "v", "headers": {"\\ud800": "h"}, "partition": 0}',
        'body/records/0/headers (a property name)',
      ],
    ];
    for (const id of [leader, follower]) {
      for (const [record, field] of cases) expectRefused(await produceRaw(id, record), field);
    }
    // Topic names and group commits go through the same parser.
    expectRefused(
      await api.call(3, { method: 'POST', path: '/v1/topics', body: '{"name": "\\ud800"}' }),
      'body/name',
    );
    expect(await highWatermark('t', 0)).toBe(before);
  });

  it('stores escaped surrogate pairs and raw astral characters as the characters they are', async () => {
    const { follower } = await api.leaderAndFollower('t', 0);
    const answer = await produceRaw(
      follower,
      '{"value": "\\ud83d\\ude80 🚀", "key": "\\uD834\\uDD1E", "headers": {"\\u00e9": "𝄞"}, "partition": 0}',
    );
    expect(answer.status, answer.text).toBe(200);
    const record = await fetchOne('t', 0, answer.body.offsets[0].offset);
    expect(record).toMatchObject({ value: '🚀 🚀', key: '𝄞', headers: { é: '𝄞' } });
  });
});

describe('what the record format could not give back', () => {
  it('refuses base64 with stray bits, which would read back as another spelling', async () => {
    for (const value of ['AB==', 'AAB=', 'QQ', 'QQ=']) {
      const answer = await api.json(1, 'POST', '/v1/topics/t/records', {
        records: [{ value, partition: 1 }],
        encoding: 'base64',
      });
      expectRefused(answer, 'records[0].value');
    }
  });

  it('refuses a header name over 65535 bytes and more than 65535 headers; keeps the largest allowed', async () => {
    const long = await api.json(1, 'POST', '/v1/topics/t/records', {
      records: [{ value: 'v', partition: 1, headers: { ['é'.repeat(32_768)]: 'x' } }],
    });
    expectRefused(long, 'records[0].headers');
    const headers: Record<string, null> = {};
    for (let i = 0; i < 65_536; i++) headers[i.toString(36)] = null;
    const many = await api.json(1, 'POST', '/v1/topics/t/records', {
      records: [{ value: 'v', partition: 1, headers }],
    });
    expectRefused(many, 'records[0].headers');
    const name = 'n'.repeat(65_535);
    const largest = await api.json(1, 'POST', '/v1/topics/t/records', {
      records: [{ value: 'v', partition: 1, headers: { [name]: 'x' } }],
    });
    expect(largest.status, largest.text.slice(0, 200)).toBe(200);
    const record = await fetchOne('t', 1, largest.body.offsets[0].offset);
    expect(record.headers).toEqual({ [name]: 'x' });
  });
});

describe('topic retention', () => {
  it('refuses retention values out of bounds, naming the field', async () => {
    const cases: Array<[string, string]> = [
      ['"retentionMs": 1e300', 'body/config/retentionMs'],
      ['"retentionMs": 9007199254740992', 'body/config/retentionMs'],
      ['"retentionMs": 604800000.5', 'body/config/retentionMs'],
      ['"retentionMs": -2', 'body/config/retentionMs'],
      ['"retentionBytes": 1e10', 'body/config/retentionBytes'],
      ['"retentionBytes": -0', 'body/config/retentionBytes'],
    ];
    for (const [config, field] of cases) {
      const body = `{"name": "retained", "config": {${config}}}`;
      expectRefused(await api.call(2, { method: 'POST', path: '/v1/topics', body }), field);
    }
    expect((await api.json(1, 'GET', '/v1/topics/retained')).status).toBe(404);
  });

  it('stores retention values at the bounds exactly', async () => {
    const config = { retentionMs: Number.MAX_SAFE_INTEGER, retentionBytes: -1 };
    const created = await api.json(2, 'POST', '/v1/topics', { name: 'retained', config });
    expect(created.status, created.text).toBe(201);
    const described = await api.json(3, 'GET', '/v1/topics/retained');
    expect(described.text).toContain('"retentionMs":9007199254740991');
    expect(described.body.config).toMatchObject(config);
  });
});

describe('what JSON.parse alone would read differently', () => {
  it('refuses an object that repeats a property name, sent to the leader or forwarded', async () => {
    const { leader, follower } = await api.leaderAndFollower('t', 0);
    const before = await highWatermark('t', 0);
    for (const id of [leader, follower]) {
      const header = await produceRaw(id, '{"value": "v", "headers": {"a": "1", "a": "2"}, "partition": 0}');
      expectRefused(header, 'body/records/0/headers has the property "a" twice');
      const records = await api.call(id, {
        method: 'POST',
        path: '/v1/topics/t/records',
        body: '{"records": [{"value": "a", "partition": 0}], "records": [{"value": "b", "partition": 0}]}',
      });
      expectRefused(records, 'body has the property "records" twice');
    }
    expect(await highWatermark('t', 0)).toBe(before);
  });

  it('answers 415 to a body in a charset other than UTF-8, and takes charset=utf-8', async () => {
    const before = await highWatermark('t', 0);
    const produce = (contentType: string) =>
      api.call(2, {
        method: 'POST',
        path: '/v1/topics/t/records',
        body: '{"records": [{"value": "é", "partition": 0}]}',
        headers: { 'content-type': contentType },
      });
    for (const type of ['application/json; charset=utf-16', 'application/json; charset="ISO-8859-1"']) {
      expectRefused(await produce(type), 'charset', 'UNSUPPORTED_MEDIA_TYPE', 415);
    }
    expect(await highWatermark('t', 0)).toBe(before);
    const utf8 = await produce('application/json; charset=UTF-8');
    expect(utf8.status, utf8.text).toBe(200);
    expect(await fetchOne('t', 0, utf8.body.offsets[0].offset)).toMatchObject({ value: 'é' });
  });

  it('refuses a 16 MiB body nested [[[… at once, with a short answer', async () => {
    const body = `${'['.repeat(16 * 1024 * 1024 - 3)}1.5`;
    const started = performance.now();
    const answer = await api.call(1, { method: 'POST', path: '/v1/topics/t/records', body });
    // The bound includes sending 16 MiB over loopback; before the nesting bound this took ~11 s.
    expect(performance.now() - started).toBeLessThan(3000);
    expectRefused(answer, 'nesting deeper than 32');
    expect(answer.text.length).toBeLessThan(1024);
  }, 30_000);
});
