// Consumers that time produce-to-consume latency: each reads timed records (records.ts) and
// records, per record, the time from its send to its arrival here. Three ways to read one
// partition on one node: long-poll fetches, the SSE stream, and the SDK's Consumer; and the SDK's
// Consumer over every partition of a topic, each read on a follower. All stop on `signal`.

import { request } from 'undici';
import { Raftlog, type RaftlogOptions } from '../../src/client/index.js';
import { msSince, sentEpochMsOf } from './records.js';
import { type Histogram, latencyHistogram, recordMs } from './stats.js';

export type ConsumerKind = 'longPoll' | 'sse' | 'sdk';

export interface TimingConsumer {
  kind: ConsumerKind;
  latency: Histogram;
  received: number;
  /** Resolves once the consumer is reading (stream open, first fetch answered). */
  ready: Promise<void>;
  /** Resolves when the consumer has stopped. */
  finished: Promise<void>;
}

const LONG_POLL_WAIT_MS = 1000;

export function startConsumer(
  kind: ConsumerKind,
  options: { url: string; topic: string; partition: number; signal: AbortSignal },
): TimingConsumer {
  const read = kind === 'longPoll' ? readLongPoll : kind === 'sse' ? readSse : readSdk;
  return timing(kind, options.signal, (onRecord, ready) => read(options, onRecord, ready));
}

/** The SDK's Consumer on every partition of `topic`, each partition read on one of its followers. */
export function startFollowerConsumer(options: {
  urls: string[];
  topic: string;
  signal: AbortSignal;
}): TimingConsumer {
  return timing('sdk', options.signal, (onRecord, ready) =>
    consumeWithSdk(
      { urls: options.urls, readFrom: 'follower' },
      { topic: options.topic },
      options.signal,
      onRecord,
      ready,
    ),
  );
}

/** The SDK resolves 'latest' on its first fetch: reading, for timing, this long after it started. */
const SDK_FIRST_FETCH_MS = 200;

function timing(
  kind: ConsumerKind,
  signal: AbortSignal,
  read: (onRecord: (value: string | null) => void, ready: () => void) => Promise<void>,
): TimingConsumer {
  const consumer = { kind, latency: latencyHistogram(), received: 0 } as TimingConsumer;
  const onRecord = (value: string | null) => {
    const sent = sentEpochMsOf(value);
    if (Number.isNaN(sent)) return;
    consumer.received++;
    recordMs(consumer.latency, msSince(sent));
  };
  let markReady: () => void = () => undefined;
  consumer.ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  consumer.finished = read(onRecord, markReady)
    .catch((error) => {
      if (!signal.aborted) throw error;
    })
    .finally(markReady);
  return consumer;
}

interface ReadOptions {
  url: string;
  topic: string;
  partition: number;
  signal: AbortSignal;
}

async function readLongPoll(
  options: ReadOptions,
  onRecord: (value: string | null) => void,
  ready: () => void,
): Promise<void> {
  let offset: string = 'latest';
  const path = `/v1/topics/${options.topic}/partitions/${options.partition}/records`;
  while (!options.signal.aborted) {
    const response = await request(`${options.url}${path}?offset=${offset}&waitMs=${LONG_POLL_WAIT_MS}`, {
      signal: options.signal,
    });
    const body = (await response.body.json()) as { records: { value: string | null }[]; nextOffset: number };
    if (response.statusCode !== 200) throw new Error(`long-poll fetch: ${response.statusCode}`);
    ready();
    for (const record of body.records) onRecord(record.value);
    offset = String(body.nextOffset);
  }
}

async function readSse(
  options: ReadOptions,
  onRecord: (value: string | null) => void,
  ready: () => void,
): Promise<void> {
  const path = `/v1/topics/${options.topic}/partitions/${options.partition}/stream?offset=latest`;
  const response = await request(`${options.url}${path}`, {
    headers: { accept: 'text/event-stream' },
    signal: options.signal,
    bodyTimeout: 0,
  });
  if (response.statusCode !== 200) throw new Error(`SSE stream: ${response.statusCode}`);
  ready();
  let pending = '';
  for await (const chunk of response.body) {
    pending += (chunk as Buffer).toString('utf8');
    let end = pending.indexOf('\n');
    while (end >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      if (line.startsWith('data: ')) onRecord((JSON.parse(line.slice(6)) as { value: string | null }).value);
      end = pending.indexOf('\n');
    }
  }
}

function readSdk(
  options: ReadOptions,
  onRecord: (value: string | null) => void,
  ready: () => void,
): Promise<void> {
  return consumeWithSdk(
    { url: options.url },
    { topic: options.topic, partitions: [options.partition] },
    options.signal,
    onRecord,
    ready,
  );
}

/** The SDK's Consumer from 'latest': each record's value to onRecord until `signal`. */
async function consumeWithSdk(
  clientOptions: RaftlogOptions,
  consumerOptions: { topic: string; partitions?: number[] },
  signal: AbortSignal,
  onRecord: (value: string | null) => void,
  ready: () => void,
): Promise<void> {
  const client = new Raftlog(clientOptions);
  try {
    const records = client.consumer({ ...consumerOptions, from: 'latest' }).records({ signal });
    setTimeout(ready, SDK_FIRST_FETCH_MS).unref();
    for await (const record of records) onRecord(record.value);
  } finally {
    await client.close();
  }
}
