// A scripted node holding one topic's logs, for the tail and group tests: describe, fetch (utf8 or
// base64, as the server does), the time lookup of --offset @TIMESTAMP, and every request recorded.

import type { FetchedRecord } from '../../src/wire/types.js';
import { FakeNode, topicDescription } from '../client/fake-node.js';

export interface StoredRecord {
  key: Uint8Array | null;
  value: Uint8Array;
  headers?: Record<string, string | null>;
  timestamp: number;
}

export interface LogFixture {
  node: FakeNode;
  logs: StoredRecord[][];
  /** Per partition, the first offset still retained. */
  logStart: number[];
}

/** A record of UTF-8 text. */
export function text(
  value: string,
  options: { key?: string; timestamp?: number; headers?: Record<string, string | null> } = {},
): StoredRecord {
  return {
    key: options.key === undefined ? null : Buffer.from(options.key),
    value: Buffer.from(value),
    headers: options.headers,
    timestamp: options.timestamp ?? 1,
  };
}

export function logNode(topic: string, logs: StoredRecord[][], node = new FakeNode()): LogFixture {
  const fixture: LogFixture = { node, logs, logStart: logs.map(() => 0) };
  const describe = () => {
    const description = topicDescription(topic, logs.length);
    for (const p of description.partitions) {
      p.highWatermark = logs[p.partition]!.length;
      p.logStartOffset = fixture.logStart[p.partition]!;
    }
    return description;
  };
  const name = topic.replace(/[.]/g, '\\.');
  node.on('GET', new RegExp(`^/v1/topics/${name}$`), () => ({ status: 200, body: describe() }));
  node.on('GET', new RegExp(`^/v1/topics/${name}/partitions/(\\d+)/records$`), (request, match) => {
    const partition = Number(match[1]);
    const log = logs[partition]!;
    const raw = request.query.offset ?? 'earliest';
    const start = fixture.logStart[partition]!;
    const offset = raw === 'earliest' ? start : raw === 'latest' ? log.length : Number(raw);
    const limit = Number(request.query.limit ?? 1000);
    const encoding = request.query.encoding === 'base64' ? 'base64' : 'utf8';
    const records: FetchedRecord[] = [];
    for (let o = Math.max(offset, start); o < Math.min(log.length, offset + limit); o++) {
      const r = log[o]!;
      records.push({
        offset: o,
        key: r.key === null ? null : Buffer.from(r.key).toString(encoding),
        value: Buffer.from(r.value).toString(encoding),
        headers: r.headers ?? null,
        timestamp: r.timestamp,
      });
    }
    const nextOffset = records.length > 0 ? records[records.length - 1]!.offset + 1 : Math.max(offset, start);
    return {
      status: 200,
      body: { records, nextOffset, highWatermark: log.length, logStartOffset: start },
    };
  });
  node.on('GET', new RegExp(`^/v1/topics/${name}/partitions/(\\d+)/offsets$`), (request, match) => {
    const log = logs[Number(match[1])]!;
    const timestampMs = Number(request.query.timestamp);
    const offset = log.findIndex((r) => r.timestamp >= timestampMs);
    const body =
      offset === -1 ? { offset: log.length, timestamp: null } : { offset, timestamp: log[offset]!.timestamp };
    return { status: 200, body };
  });
  return fixture;
}
