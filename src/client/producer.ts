// The Producer: partitions records on the client (the contract's rule: murmur2 of a key, else
// round-robin), collects them per partition into batches (lingerMs, record and byte limits),
// sends each batch straight to the partition's leader, one request at a time per partition (so
// order holds across retries), and retries what is safe to retry within bounds.
//
// Idempotence (on by default, as in Kafka since 3.0): every request carries the producer's id,
// epoch and the sequence of its first record, counted per partition. A retry reuses the sequence,
// so the leader (old or new: the dedup state is replicated) drops what it already committed. If
// retries run out while the outcome is unknown (504, broken connection), this producer can no
// longer know the partition's next sequence: that partition then fails with
// PRODUCER_SEQUENCE_UNKNOWN, and a new producer (new id, or a higher epoch) must take over.
// Guessing would risk loss or a gap.

import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { partitionForKey } from '../wire/partitioner.js';
import type { ProduceResponse, ProducerIdentity } from '../wire/types.js';
import { DEFAULT_PRODUCE_TIMEOUT_MS } from '../wire/types.js';
import { type CallOptions, withDeadline } from './call.js';
import type { Raftlog } from './client.js';
import { RaftlogError, surelyNotApplied } from './errors.js';
import { JsonText } from './http.js';
import { topicPath } from './paths.js';
import { type RetryOptions, type RetryPolicy, retryPolicy } from './retry.js';

/** A record to send. With `json: true` on the producer, `value` is any JSON value. */
export interface ProducerRecord<V = string | Uint8Array> {
  /** Absent or null: no key (round-robin). An empty string is a key, as in Kafka. */
  key?: string | Uint8Array | null;
  value: V;
  headers?: Record<string, string | null> | null;
  /** Overrides the partitioner. */
  partition?: number;
  /** Milliseconds since the epoch; default: the leader's clock at append. */
  timestamp?: number;
}

export interface IdempotenceOptions {
  /** Default: a random id. Reuse an id only with a higher epoch: sequences restart at 0. */
  id?: string;
  epoch?: number;
}

export interface ProducerOptions {
  /**
   * Number requests per partition so that retries never duplicate (default true). With false,
   * a request whose outcome is unknown (504, broken connection) is not retried: it could write twice.
   */
  idempotent?: boolean | IdempotenceOptions;
  /** How long a batch waits for more records before it is sent (default 5; 0: at once). */
  lingerMs?: number;
  batchRecordsMax?: number;
  /** Estimated JSON bytes of a batch's records. */
  batchBytesMax?: number;
  /** Records accepted but not yet acknowledged; beyond it send() fails with BUFFER_FULL. */
  bufferBytesMax?: number;
  /** Values are JSON values, sent as their JSON text. */
  json?: boolean;
  /** Server-side commit wait of each request (the request's `timeoutMs`), then 504 TIMEOUT. */
  commitTimeoutMs?: number;
  /** Retries of a request (defaults: 30 attempts, backoff 100 to 2000 ms, 60 s in all). */
  retry?: RetryOptions;
}

/** Where a record landed. */
export interface RecordMetadata {
  topic: string;
  partition: number;
  offset: number;
  /** The server had already committed this request (an idempotent retry). */
  duplicate: boolean;
}

export const PRODUCER_DEFAULTS = {
  lingerMs: 5,
  batchRecordsMax: 1000,
  batchBytesMax: 1024 * 1024,
  bufferBytesMax: 32 * 1024 * 1024,
} as const;

const PRODUCER_RETRY_DEFAULTS: Partial<RetryPolicy> = { attemptsMax: 30, totalMsMax: 60_000 };
/** JSON framing per record beyond its strings: braces, field names, quotes, partition, timestamp. */
const RECORD_OVERHEAD_BYTES = 64;

/** One send() call: its records settle it together. */
class SendCall {
  readonly results: RecordMetadata[];
  remaining: number;
  settled = false;
  readonly promise: Promise<RecordMetadata[]>;
  private resolvePromise!: (results: RecordMetadata[]) => void;
  private rejectPromise!: (error: unknown) => void;

  constructor(count: number) {
    this.results = new Array<RecordMetadata>(count);
    this.remaining = count;
    this.promise = new Promise<RecordMetadata[]>((resolve, reject) => {
      this.resolvePromise = resolve;
      this.rejectPromise = reject;
    });
  }

  deliver(index: number, metadata: RecordMetadata): void {
    if (this.settled) return;
    this.results[index] = metadata;
    if (--this.remaining === 0) {
      this.settled = true;
      this.resolvePromise(this.results);
    }
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectPromise(error);
  }
}

interface PendingRecord {
  call: SendCall;
  index: number;
  key: string | Uint8Array | null | undefined;
  value: string | Uint8Array;
  headers: Record<string, string | null> | null | undefined;
  timestamp: number | undefined;
  bytes: number;
}

/** The records of one partition, sent one request at a time. */
interface Lane {
  topic: string;
  partition: number;
  /** Records not yet sent, oldest first, from `head` on. */
  items: PendingRecord[];
  head: number;
  /** Records from `head` that may go now (linger over, batch full, or a flush). */
  ready: number;
  readyBytes: number;
  pendingBytes: number;
  timer: NodeJS.Timeout | undefined;
  /** In `toSeal` already (lingerMs 0). */
  sealQueued: boolean;
  sending: boolean;
  // Invariant: nextSequence = records this producer got acknowledged on the partition.
  nextSequence: number;
  /** Set once the partition's sequence is unknown; every later record fails with it. */
  failure: RaftlogError | undefined;
}

interface TopicState {
  lanes: Lane[];
  /** Records waiting for the partition count (the first send to a topic). */
  waiting: PendingRecord[];
  waitingPartitions: Array<number | undefined>;
  loading: boolean;
  roundRobin: number;
}

export class Producer<V = string | Uint8Array> {
  /** The identity requests carry when idempotent. */
  readonly identity: Omit<ProducerIdentity, 'sequence'> | undefined;
  private readonly client: Raftlog;
  private readonly lingerMs: number;
  private readonly batchRecordsMax: number;
  private readonly batchBytesMax: number;
  private readonly bufferBytesMax: number;
  private readonly json: boolean;
  private readonly commitTimeoutMs: number | undefined;
  private readonly retry: RetryPolicy;
  private readonly topics = new Map<string, TopicState>();
  private readonly unsettled = new Set<SendCall>();
  /** Lanes that took records in this tick, sealed in one microtask when lingerMs is 0. */
  private readonly toSeal: Lane[] = [];
  private sealScheduled = false;
  private bufferedBytes = 0;
  private flushes = 0;
  private closed = false;
  private fenced: RaftlogError | undefined;
  /** Aborts requests in flight when close() gives up. */
  private readonly stop = new AbortController();
  private lanesTotal = 0;
  private readonly keyScratch = Buffer.allocUnsafe(256);

  constructor(client: Raftlog, options: ProducerOptions = {}) {
    this.client = client;
    this.lingerMs = options.lingerMs ?? PRODUCER_DEFAULTS.lingerMs;
    this.batchRecordsMax = options.batchRecordsMax ?? PRODUCER_DEFAULTS.batchRecordsMax;
    this.batchBytesMax = options.batchBytesMax ?? PRODUCER_DEFAULTS.batchBytesMax;
    this.bufferBytesMax = options.bufferBytesMax ?? PRODUCER_DEFAULTS.bufferBytesMax;
    this.json = options.json ?? false;
    this.commitTimeoutMs = options.commitTimeoutMs;
    this.retry = retryPolicy(options.retry, PRODUCER_RETRY_DEFAULTS);
    if (!(this.lingerMs >= 0) || !(this.batchRecordsMax >= 1) || !(this.batchBytesMax >= 1)) {
      throw new RangeError('lingerMs must be >= 0, batchRecordsMax and batchBytesMax >= 1');
    }
    const idempotent = options.idempotent ?? true;
    if (idempotent) {
      const settings = idempotent === true ? {} : idempotent;
      this.identity = { id: settings.id ?? `p-${randomUUID()}`, epoch: settings.epoch ?? 0 };
    }
  }

  /**
   * Queues the records; resolves once every one is committed, with where each landed, in order.
   * Rejects with the first failure of any of them (others may have been written). An abort or
   * the deadline rejects the call; records not sent yet are then dropped, those in flight may land.
   */
  send(
    topic: string,
    records: readonly ProducerRecord<V>[],
    options?: CallOptions,
  ): Promise<RecordMetadata[]> {
    const refusal = this.refusal(records);
    if (refusal) return Promise.reject(refusal);
    if (records.length === 0) return Promise.resolve([]);
    const call = new SendCall(records.length);
    const items = new Array<PendingRecord>(records.length);
    let bytes = 0;
    for (let i = 0; i < records.length; i++) {
      const item = this.pendingOf(call, i, records[i]!);
      if (typeof item === 'string') return Promise.reject(new TypeError(`records[${i}]: ${item}`));
      items[i] = item;
      bytes += item.bytes;
    }
    if (this.bufferedBytes + bytes > this.bufferBytesMax) {
      return Promise.reject(
        new RaftlogError('BUFFER_FULL', `producer buffer full (${this.bufferBytesMax} bytes unacknowledged)`),
      );
    }
    this.bufferedBytes += bytes;
    this.unsettled.add(call);
    call.promise.then(
      () => this.unsettled.delete(call),
      () => this.unsettled.delete(call),
    );
    this.place(topic, records, items);
    if (!options || (options.signal === undefined && options.timeoutMs === undefined)) return call.promise;
    return withDeadline(options, `send to '${topic}'`, (signal) => waitForCall(call, signal));
  }

  /** Sends every queued record now; resolves once all sent before it are acknowledged or failed. */
  async flush(options?: CallOptions): Promise<void> {
    const calls = [...this.unsettled].map((call) => call.promise.then(noop, noop));
    this.flushes++;
    try {
      for (const state of this.topics.values()) for (const lane of state.lanes) if (lane) this.seal(lane);
      await withDeadline(options, 'flush', (signal) => waitAll(calls, signal));
    } finally {
      this.flushes--;
    }
  }

  /**
   * Refuses new records, then flushes. If the deadline or the signal ends the wait first, records
   * not sent yet fail with CLOSED and requests in flight are abandoned (their outcome unknown), and
   * close() rejects with that reason. Does not close the client.
   */
  async close(options?: CallOptions): Promise<void> {
    this.closed = true;
    try {
      await this.flush(options);
    } catch (error) {
      const closing = new RaftlogError('CLOSED', 'producer closed before the record was acknowledged', {
        cause: error,
      });
      for (const call of [...this.unsettled]) call.fail(closing);
      this.stop.abort(closing);
      throw error;
    }
  }

  private refusal(records: readonly ProducerRecord<V>[]): Error | undefined {
    if (this.closed) return new RaftlogError('CLOSED', 'producer is closed');
    if (this.fenced) return this.fenced;
    if (!Array.isArray(records)) return new TypeError('send(topic, records): records must be an array');
    return undefined;
  }

  /** The record as it will be sent, or why it cannot be. */
  private pendingOf(call: SendCall, index: number, record: ProducerRecord<V>): PendingRecord | string {
    if (record === null || typeof record !== 'object') return 'a record must be an object';
    let value: string | Uint8Array;
    if (this.json) {
      const text = JSON.stringify(record.value);
      if (text === undefined) return 'value is not JSON';
      value = text;
    } else if (typeof record.value === 'string' || record.value instanceof Uint8Array) {
      value = record.value;
    } else {
      return 'value must be a string or a Uint8Array (or set json: true on the producer)';
    }
    const key = record.key;
    if (key !== undefined && key !== null && typeof key !== 'string' && !(key instanceof Uint8Array)) {
      return 'key must be a string, a Uint8Array or null';
    }
    let bytes = RECORD_OVERHEAD_BYTES + byteLength(value);
    if (key !== undefined && key !== null) bytes += byteLength(key);
    const headers = record.headers;
    if (headers) {
      for (const name in headers) {
        const header = headers[name];
        bytes += Buffer.byteLength(name) + (header == null ? 4 : Buffer.byteLength(header)) + 6;
      }
    }
    return { call, index, key, value, headers, timestamp: record.timestamp, bytes };
  }

  // Partitioning.

  private place(topic: string, records: readonly ProducerRecord<V>[], items: PendingRecord[]): void {
    let state = this.topics.get(topic);
    if (!state) {
      state = { lanes: [], waiting: [], waitingPartitions: [], loading: false, roundRobin: -1 };
      this.topics.set(topic, state);
    }
    const route = this.client.router.lastRoute(topic);
    if (!this.client.router.route(topic) && !state.loading) void this.loadPartitions(topic, state);
    const partitions = route?.partitions.length;
    for (let i = 0; i < items.length; i++) {
      const explicit = records[i]!.partition;
      if (partitions === undefined || state.waiting.length > 0) {
        if (explicit !== undefined && state.waiting.length === 0) {
          this.enqueue(topic, state, explicit, items[i]!);
        } else {
          state.waiting.push(items[i]!);
          state.waitingPartitions.push(explicit);
        }
        continue;
      }
      this.enqueue(topic, state, explicit ?? this.partitionOf(state, items[i]!, partitions), items[i]!);
    }
  }

  /** Asks for the topic's partitions; records waiting for them go on in the order they came. */
  private async loadPartitions(topic: string, state: TopicState): Promise<void> {
    state.loading = true;
    try {
      const route = await this.client.topicRoute(topic, this.stop.signal);
      const partitions = route.partitions.length;
      if (partitions < 1) throw new RaftlogError('UNEXPECTED_RESPONSE', `topic '${topic}' has no partitions`);
      const waiting = state.waiting.splice(0);
      const explicit = state.waitingPartitions.splice(0);
      for (let i = 0; i < waiting.length; i++) {
        const item = waiting[i]!;
        if (item.call.settled) {
          this.release(item);
          continue;
        }
        this.enqueue(topic, state, explicit[i] ?? this.partitionOf(state, item, partitions), item);
      }
    } catch (error) {
      state.waitingPartitions.length = 0;
      for (const item of state.waiting.splice(0)) {
        this.release(item);
        item.call.fail(error);
      }
    } finally {
      state.loading = false;
    }
  }

  private partitionOf(state: TopicState, item: PendingRecord, partitions: number): number {
    const key = item.key;
    if (key === undefined || key === null) {
      state.roundRobin = (state.roundRobin + 1) % partitions;
      return state.roundRobin;
    }
    if (key instanceof Uint8Array) return partitionForKey(key, partitions);
    // Short keys hash from a reused buffer: no allocation per record.
    if (key.length * 3 <= this.keyScratch.length) {
      const length = this.keyScratch.write(key, 0, 'utf8');
      return partitionForKey(this.keyScratch.subarray(0, length), partitions);
    }
    return partitionForKey(Buffer.from(key, 'utf8'), partitions);
  }

  // Batching.

  private enqueue(topic: string, state: TopicState, partition: number, item: PendingRecord): void {
    let lane = state.lanes[partition];
    if (!lane) {
      lane = {
        topic,
        partition,
        items: [],
        head: 0,
        ready: 0,
        readyBytes: 0,
        pendingBytes: 0,
        timer: undefined,
        sealQueued: false,
        sending: false,
        nextSequence: 0,
        failure: undefined,
      };
      state.lanes[partition] = lane;
      // Each lane's request in flight listens on `stop` (and a finished one until its body has
      // closed): past Node's default of 10 that is no leak, so the warning is raised with the lanes.
      this.lanesTotal++;
      setMaxListeners(10 + 2 * this.lanesTotal, this.stop.signal);
    }
    lane.items.push(item);
    lane.pendingBytes += item.bytes;
    const unready = lane.items.length - lane.head - lane.ready;
    const full = unready >= this.batchRecordsMax || lane.pendingBytes - lane.readyBytes >= this.batchBytesMax;
    if (full) {
      this.seal(lane);
    } else if (this.lingerMs === 0 || this.flushes > 0) {
      if (!lane.sealQueued) this.sealSoon(lane);
    } else if (lane.timer === undefined) {
      lane.timer = setTimeout(() => this.seal(lane), this.lingerMs);
    }
  }

  /** lingerMs 0 (or a flush): everything sent in this tick goes in one request per partition. */
  private sealSoon(lane: Lane): void {
    lane.sealQueued = true;
    this.toSeal.push(lane);
    if (this.sealScheduled) return;
    this.sealScheduled = true;
    queueMicrotask(() => {
      this.sealScheduled = false;
      for (const waiting of this.toSeal.splice(0)) {
        waiting.sealQueued = false;
        this.seal(waiting);
      }
    });
  }

  /** Makes every record of the lane ready to go, and starts sending if idle. */
  private seal(lane: Lane): void {
    if (lane.timer !== undefined) {
      clearTimeout(lane.timer);
      lane.timer = undefined;
    }
    lane.ready = lane.items.length - lane.head;
    lane.readyBytes = lane.pendingBytes;
    if (!lane.sending && lane.ready > 0) void this.drain(lane);
  }

  private async drain(lane: Lane): Promise<void> {
    lane.sending = true;
    try {
      for (let batch = this.takeBatch(lane); batch.length > 0; batch = this.takeBatch(lane)) {
        await this.deliver(lane, batch);
      }
    } finally {
      lane.sending = false;
      // Records that became ready while the last request was out (a timer that fired).
      if (lane.ready > 0) void this.drain(lane);
    }
  }

  /** Up to one request's worth of ready records; those of abandoned calls are dropped here. */
  private takeBatch(lane: Lane): PendingRecord[] {
    const batch: PendingRecord[] = [];
    let bytes = 0;
    while (lane.ready > 0 && batch.length < this.batchRecordsMax) {
      const item = lane.items[lane.head]!;
      if (batch.length > 0 && bytes + item.bytes > this.batchBytesMax) break;
      lane.items[lane.head] = undefined as unknown as PendingRecord;
      lane.head++;
      lane.ready--;
      lane.readyBytes -= item.bytes;
      lane.pendingBytes -= item.bytes;
      if (item.call.settled) {
        this.release(item);
        continue;
      }
      batch.push(item);
      bytes += item.bytes;
    }
    if (lane.head === lane.items.length) {
      lane.items.length = 0;
      lane.head = 0;
    } else if (lane.head > 1024 && lane.head * 2 > lane.items.length) {
      lane.items.splice(0, lane.head);
      lane.head = 0;
    }
    return batch;
  }

  private release(item: PendingRecord): void {
    this.bufferedBytes -= item.bytes;
  }

  // Delivery.

  private async deliver(lane: Lane, batch: PendingRecord[]): Promise<void> {
    const failure = this.fenced ?? lane.failure;
    if (failure) return this.failBatch(batch, failure);
    const sequence = lane.nextSequence;
    const body = new JsonText(this.requestText(lane, batch, sequence));
    const idempotent = this.identity !== undefined;
    let outcomeUnknown = false;
    try {
      const answer = await this.client.execute<ProduceResponse>(
        {
          method: 'POST',
          path: `${topicPath(lane.topic)}/records`,
          body,
          signal: this.stop.signal,
          serverWaitMs: this.commitTimeoutMs ?? DEFAULT_PRODUCE_TIMEOUT_MS,
        },
        {
          target: (_attempt, signal) => this.client.leaderUrl(lane.topic, lane.partition, signal),
          safety: idempotent ? 'idempotent' : 'once',
          signal: this.stop.signal,
          retry: this.retry,
          onFailure: (error) => {
            outcomeUnknown ||= mightHaveApplied(error);
            this.client.onLeaderTrouble(lane.topic, error);
          },
        },
      );
      if (answer.servedBy !== undefined)
        this.client.router.learnLeader(lane.topic, lane.partition, answer.servedBy);
      const offsets = answer.body?.offsets;
      if (!Array.isArray(offsets) || offsets.length !== batch.length) {
        throw new RaftlogError(
          'UNEXPECTED_RESPONSE',
          `produce to '${lane.topic}' answered ${offsets?.length ?? 'no'} offsets for ${batch.length} records`,
        );
      }
      lane.nextSequence += batch.length;
      const duplicate = answer.body.duplicate === true;
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i]!;
        const offset = offsets[i]!;
        this.release(item);
        item.call.deliver(item.index, {
          topic: lane.topic,
          partition: offset.partition,
          offset: offset.offset,
          duplicate,
        });
      }
    } catch (error) {
      if (idempotent) this.recordIdempotenceFailure(lane, sequence, batch.length, error, outcomeUnknown);
      this.failBatch(batch, error);
    }
  }

  private failBatch(batch: PendingRecord[], error: unknown): void {
    for (const item of batch) {
      this.release(item);
      item.call.fail(error);
    }
  }

  /**
   * The request's JSON, built once: every retry sends the same bytes (and the same sequence).
   * Written out field by field rather than as an object for JSON.stringify: this runs for every
   * request, and the intermediate objects showed in the SDK's produce latency (bench/sdk.ts).
   */
  private requestText(lane: Lane, batch: PendingRecord[], sequence: number): string {
    let binary = false;
    for (const item of batch) {
      if (item.value instanceof Uint8Array || item.key instanceof Uint8Array) {
        binary = true;
        break;
      }
    }
    const partitionField = `,"partition":${lane.partition}`;
    let text = '{"records":[';
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]!;
      text += i === 0 ? '{"value":' : ',{"value":';
      text += JSON.stringify(binary ? base64(item.value) : item.value);
      const key = item.key;
      if (key === null) text += ',"key":null';
      else if (key !== undefined) text += `,"key":${JSON.stringify(binary ? base64(key) : key)}`;
      if (item.headers !== undefined) text += `,"headers":${JSON.stringify(item.headers)}`;
      text += partitionField;
      if (item.timestamp !== undefined) text += `,"timestamp":${JSON.stringify(item.timestamp)}`;
      text += '}';
    }
    text += ']';
    if (binary) text += ',"encoding":"base64"';
    if (this.commitTimeoutMs !== undefined) text += `,"timeoutMs":${JSON.stringify(this.commitTimeoutMs)}`;
    const identity = this.identity;
    if (identity) {
      text += `,"producer":{"id":${JSON.stringify(identity.id)},"epoch":${JSON.stringify(identity.epoch)},"sequence":${sequence}}`;
    }
    return `${text}}`;
  }

  private recordIdempotenceFailure(
    lane: Lane,
    sequence: number,
    count: number,
    error: unknown,
    outcomeUnknown: boolean,
  ): void {
    const code = error instanceof RaftlogError ? error.code : undefined;
    if (code === 'PRODUCER_FENCED') {
      this.fenced = error as RaftlogError;
      return;
    }
    if (outcomeUnknown || code === 'OUT_OF_ORDER_SEQUENCE') {
      lane.failure = new RaftlogError(
        'PRODUCER_SEQUENCE_UNKNOWN',
        `producer ${this.identity!.id} cannot know whether sequences ${sequence}..${sequence + count - 1} ` +
          `of '${lane.topic}' partition ${lane.partition} were committed; use a new producer id or a higher epoch`,
        { cause: error },
      );
    }
  }
}

function noop(): void {}

function waitForCall(call: SendCall, signal: AbortSignal | undefined): Promise<RecordMetadata[]> {
  if (!signal) return call.promise;
  if (signal.aborted) {
    call.fail(signal.reason);
    return call.promise;
  }
  const onAbort = () => call.fail(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  return call.promise.finally(() => signal.removeEventListener('abort', onAbort));
}

function waitAll(calls: Promise<void>[], signal: AbortSignal | undefined): Promise<void> {
  const all = Promise.all(calls).then(noop);
  if (!signal) return all;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    all.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function byteLength(value: string | Uint8Array): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength;
}

function base64(value: string | Uint8Array): string {
  return typeof value === 'string'
    ? Buffer.from(value, 'utf8').toString('base64')
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
}

/** A 4xx answer and a refusal before append change nothing; anything else (504, 5xx, a broken connection) might have. */
function mightHaveApplied(error: unknown): boolean {
  if (surelyNotApplied(error)) return false;
  return !(error instanceof RaftlogError && error.statusCode >= 400 && error.statusCode < 500);
}
