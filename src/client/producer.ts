// The Producer: collects send() calls into batches (linger, record and byte limits), sends one
// request per batch, one batch at a time per partition (so order holds across retries), retries
// what is safe to retry within bounds, and optionally numbers requests for idempotence.
//
// Idempotence (contract: `producer {id, epoch, sequence}`, sequence counted per partition):
// every request targets one known partition, chosen here with the server's rule (murmur2 of the
// key; keyless records stick to one partition per batch, as Kafka's sticky partitioner does).
// A retry reuses the sequence, so the server drops what it already committed. If retries run
// out while the outcome is unknown (504, broken connection), this producer can no longer know the
// partition's next sequence: that partition then fails with PRODUCER_SEQUENCE_UNKNOWN, and a
// new producer (new id, or a higher epoch) must take over. Guessing would risk loss or a gap.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { partitionForKey } from '../wire/partitioner.js';
import type {
  Encoding,
  ProduceRecord,
  ProduceRequest,
  ProduceResponse,
  ProducerIdentity,
} from '../wire/types.js';
import type { RaftlogClient } from './client.js';
import { isRetriable, RaftlogError, surelyNotApplied } from './errors.js';
import { type RetryOptions, type RetryPolicy, retryDelayMs, retryPolicy } from './retry.js';

export interface IdempotenceOptions {
  /** Default: a random id. Reuse an id only with a higher epoch: sequences restart at 0. */
  id?: string;
  epoch?: number;
}

export interface ProducerOptions {
  /** How long a batch waits for more records before it is sent. */
  lingerMs?: number;
  batchRecordsMax?: number;
  /** Estimated JSON bytes of a batch's records. */
  batchBytesMax?: number;
  /** Records accepted but not yet acknowledged; beyond it send() fails with BUFFER_FULL. */
  bufferBytesMax?: number;
  encoding?: Encoding;
  /** Server-side commit wait of each request (`timeoutMs`); then 504 TIMEOUT. */
  timeoutMs?: number;
  /** Number requests per partition so that retries never duplicate. Off by default. */
  idempotence?: boolean | IdempotenceOptions;
  /**
   * Retries of 503 (never applied), and with idempotence also of 504 and broken connections
   * (same sequence, so safe). Without idempotence those are not retried: they could duplicate.
   */
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

/** JSON framing per record beyond its strings: braces, field names, quotes, partition, timestamp. */
const RECORD_OVERHEAD_BYTES = 64;

interface PendingRecord {
  record: ProduceRecord;
  bytes: number;
  resolve: (metadata: RecordMetadata) => void;
  reject: (error: unknown) => void;
}

interface Batch {
  topic: string;
  /** Undefined: the server picks each record's partition (never with idempotence). */
  partition: number | undefined;
  items: PendingRecord[];
  bytes: number;
  timer: NodeJS.Timeout | undefined;
}

/** The batches of one (topic, partition), sent one at a time. */
interface Lane {
  queue: Batch[];
  sending: boolean;
  // Invariant: nextSequence = records this producer got acknowledged on the partition.
  nextSequence: number;
  /** Set once the partition's sequence is unknown; every later batch fails with it. */
  failure: RaftlogError | undefined;
}

/** Sends waiting for a topic's partition count (idempotence only), kept in call order. */
interface TopicPartitions {
  partitions: number | undefined;
  waiting: Array<{ record: ProduceRecord; item: PendingRecord }>;
  loading: boolean;
  stickyPartition: number;
}

type DeliveryOutcome =
  | { ok: true; response: ProduceResponse }
  | { ok: false; error: unknown; outcomeUnknown: boolean };

export class Producer {
  /** The identity requests carry when idempotent. */
  readonly identity: Omit<ProducerIdentity, 'sequence'> | undefined;
  private readonly client: RaftlogClient;
  private readonly lingerMs: number;
  private readonly batchRecordsMax: number;
  private readonly batchBytesMax: number;
  private readonly bufferBytesMax: number;
  private readonly encoding: Encoding;
  private readonly timeoutMs: number | undefined;
  private readonly retry: RetryPolicy;
  private readonly openBatches = new Map<string, Batch>();
  private readonly lanes = new Map<string, Lane>();
  private readonly topics = new Map<string, TopicPartitions>();
  private bufferedBytes = 0;
  private unsettledRecords = 0;
  private idleWaiters: Array<() => void> = [];
  private flushes = 0;
  private closed = false;
  private fenced: RaftlogError | undefined;

  constructor(client: RaftlogClient, options: ProducerOptions = {}) {
    this.client = client;
    this.lingerMs = options.lingerMs ?? PRODUCER_DEFAULTS.lingerMs;
    this.batchRecordsMax = options.batchRecordsMax ?? PRODUCER_DEFAULTS.batchRecordsMax;
    this.batchBytesMax = options.batchBytesMax ?? PRODUCER_DEFAULTS.batchBytesMax;
    this.bufferBytesMax = options.bufferBytesMax ?? PRODUCER_DEFAULTS.bufferBytesMax;
    this.encoding = options.encoding ?? 'utf8';
    this.timeoutMs = options.timeoutMs;
    this.retry = retryPolicy(options.retry);
    if (!(this.lingerMs >= 0) || !(this.batchRecordsMax >= 1) || !(this.batchBytesMax >= 1)) {
      throw new RangeError('lingerMs must be >= 0, batchRecordsMax and batchBytesMax >= 1');
    }
    const idempotence = options.idempotence;
    if (idempotence) {
      const settings = idempotence === true ? {} : idempotence;
      this.identity = { id: settings.id ?? `p-${randomUUID()}`, epoch: settings.epoch ?? 0 };
    }
  }

  /** Queues a record; resolves once it is committed, with where it landed. */
  send(topic: string, record: ProduceRecord): Promise<RecordMetadata> {
    const refusal = this.refusal(record);
    if (refusal) return Promise.reject(refusal);
    const bytes = estimateRecordBytes(record);
    if (this.bufferedBytes + bytes > this.bufferBytesMax) {
      return Promise.reject(
        new RaftlogError('BUFFER_FULL', `producer buffer full (${this.bufferBytesMax} bytes unacknowledged)`),
      );
    }
    this.bufferedBytes += bytes;
    this.unsettledRecords++;
    const delivered = new Promise<RecordMetadata>((resolve, reject) => {
      const item: PendingRecord = { record, bytes, resolve, reject };
      if (this.identity === undefined || record.partition !== undefined) {
        this.place(topic, record.partition, item);
      } else {
        this.placeWhenPartitioned(topic, record, item);
      }
    });
    return delivered.finally(() => this.settle(bytes));
  }

  /** Sends every queued record now and waits until all sent so far are acknowledged or failed. */
  async flush(): Promise<void> {
    this.flushes++;
    try {
      for (const batch of [...this.openBatches.values()]) this.seal(batch);
      if (this.unsettledRecords > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    } finally {
      this.flushes--;
    }
  }

  /** Refuses new records, then flushes. Does not close the client. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private refusal(record: ProduceRecord): Error | undefined {
    if (this.closed) return new RaftlogError('CLOSED', 'producer is closed');
    if (this.fenced) return this.fenced;
    if (typeof record?.value !== 'string') return new TypeError('record.value must be a string');
    return undefined;
  }

  private settle(bytes: number): void {
    this.bufferedBytes -= bytes;
    this.unsettledRecords--;
    if (this.unsettledRecords === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  // Partition choice (idempotence only).

  private placeWhenPartitioned(topic: string, record: ProduceRecord, item: PendingRecord): void {
    let state = this.topics.get(topic);
    if (!state) {
      state = { partitions: undefined, waiting: [], loading: false, stickyPartition: -1 };
      this.topics.set(topic, state);
    }
    if (state.partitions !== undefined && state.waiting.length === 0) {
      this.place(topic, this.partitionOf(state, record), item);
      return;
    }
    state.waiting.push({ record, item });
    if (!state.loading) void this.loadPartitions(topic, state);
  }

  private async loadPartitions(topic: string, state: TopicPartitions): Promise<void> {
    state.loading = true;
    try {
      const description = await this.client.describeTopic(topic);
      state.partitions = description.partitions.length;
      if (state.partitions < 1)
        throw new RaftlogError('UNEXPECTED_RESPONSE', `topic '${topic}' has no partitions`);
      for (const { record, item } of state.waiting.splice(0))
        this.place(topic, this.partitionOf(state, record), item);
    } catch (error) {
      state.partitions = undefined;
      for (const { item } of state.waiting.splice(0)) item.reject(error);
    } finally {
      state.loading = false;
    }
  }

  private partitionOf(state: TopicPartitions, record: ProduceRecord): number {
    const partitions = state.partitions!;
    if (record.key !== undefined && record.key !== null) {
      const keyBytes = Buffer.from(record.key, this.encoding === 'base64' ? 'base64' : 'utf8');
      return partitionForKey(keyBytes, partitions);
    }
    if (state.stickyPartition < 0 || state.stickyPartition >= partitions) {
      state.stickyPartition = Math.floor(Math.random() * partitions);
    }
    return state.stickyPartition;
  }

  // Batching.

  private place(topic: string, partition: number | undefined, item: PendingRecord): void {
    const key = laneKey(topic, partition);
    let batch = this.openBatches.get(key);
    if (batch && batch.bytes + item.bytes > this.batchBytesMax) {
      this.seal(batch);
      batch = undefined;
    }
    if (!batch) {
      batch = { topic, partition, items: [], bytes: 0, timer: undefined };
      this.openBatches.set(key, batch);
      const open = batch;
      if (this.flushes === 0) open.timer = setTimeout(() => this.seal(open), this.lingerMs);
    }
    batch.items.push(item);
    batch.bytes += item.bytes;
    const full = batch.items.length >= this.batchRecordsMax || batch.bytes >= this.batchBytesMax;
    if (full || this.flushes > 0) this.seal(batch);
  }

  private seal(batch: Batch): void {
    const key = laneKey(batch.topic, batch.partition);
    if (this.openBatches.get(key) !== batch) return; // Already sealed (timer raced a full batch).
    clearTimeout(batch.timer);
    this.openBatches.delete(key);
    const state = this.topics.get(batch.topic);
    // Keyless records move on to the next partition once their batch is closed (sticky).
    if (state?.partitions !== undefined && state.stickyPartition === batch.partition) {
      state.stickyPartition = (state.stickyPartition + 1) % state.partitions;
    }
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { queue: [], sending: false, nextSequence: 0, failure: undefined };
      this.lanes.set(key, lane);
    }
    lane.queue.push(batch);
    if (!lane.sending) void this.drain(lane);
  }

  private async drain(lane: Lane): Promise<void> {
    lane.sending = true;
    try {
      for (let batch = lane.queue.shift(); batch; batch = lane.queue.shift()) await this.deliver(lane, batch);
    } finally {
      lane.sending = false;
    }
  }

  // Delivery.

  private async deliver(lane: Lane, batch: Batch): Promise<void> {
    const failure = this.fenced ?? lane.failure;
    if (failure) {
      for (const item of batch.items) item.reject(failure);
      return;
    }
    const request = this.requestOf(lane, batch);
    const outcome = await this.sendWithRetry(batch.topic, request);
    if (outcome.ok) {
      lane.nextSequence += batch.items.length;
      const { offsets, duplicate } = outcome.response;
      batch.items.forEach((item, i) => {
        const { partition, offset } = offsets[i]!;
        item.resolve({ topic: batch.topic, partition, offset, duplicate });
      });
      return;
    }
    if (this.identity) this.recordIdempotenceFailure(lane, batch, request, outcome);
    for (const item of batch.items) item.reject(outcome.error);
  }

  private requestOf(lane: Lane, batch: Batch): ProduceRequest {
    const records =
      batch.partition === undefined
        ? batch.items.map((item) => item.record)
        : batch.items.map((item) => ({ ...item.record, partition: batch.partition }));
    const request: ProduceRequest = { records, encoding: this.encoding };
    if (this.timeoutMs !== undefined) request.timeoutMs = this.timeoutMs;
    if (this.identity) request.producer = { ...this.identity, sequence: lane.nextSequence };
    return request;
  }

  private recordIdempotenceFailure(
    lane: Lane,
    batch: Batch,
    request: ProduceRequest,
    outcome: { error: unknown; outcomeUnknown: boolean },
  ): void {
    const code = outcome.error instanceof RaftlogError ? outcome.error.code : undefined;
    if (code === 'PRODUCER_FENCED') {
      this.fenced = outcome.error as RaftlogError;
      return;
    }
    if (code === 'UNKNOWN_TOPIC' || code === 'UNKNOWN_PARTITION') this.topics.delete(batch.topic);
    if (outcome.outcomeUnknown || code === 'OUT_OF_ORDER_SEQUENCE') {
      const first = request.producer!.sequence;
      lane.failure = new RaftlogError(
        'PRODUCER_SEQUENCE_UNKNOWN',
        `producer ${this.identity!.id} cannot know whether sequences ${first}..${first + batch.items.length - 1} ` +
          `of '${batch.topic}' partition ${batch.partition} were committed; use a new producer id or a higher epoch`,
        { cause: outcome.error },
      );
    }
  }

  private async sendWithRetry(topic: string, request: ProduceRequest): Promise<DeliveryOutcome> {
    const startedMs = Date.now();
    let outcomeUnknown = false;
    for (let attempt = 1; ; attempt++) {
      try {
        return { ok: true, response: await this.client.produce(topic, request) };
      } catch (error) {
        outcomeUnknown ||= mightHaveApplied(error);
        const retriable = this.identity ? isRetriable(error) : surelyNotApplied(error);
        const retryAfterMs = error instanceof RaftlogError ? error.retryAfterMs : undefined;
        const delayMs = retryDelayMs(this.retry, attempt, retryAfterMs);
        const withinBudget = Date.now() - startedMs + delayMs <= this.retry.totalMsMax;
        if (!retriable || attempt >= this.retry.attemptsMax || !withinBudget) {
          return { ok: false, error, outcomeUnknown };
        }
        await sleep(delayMs);
      }
    }
  }
}

function laneKey(topic: string, partition: number | undefined): string {
  return `${topic}\u0000${partition ?? '*'}`;
}

/** A 4xx answer and a 503 append nothing; anything else (504, 5xx, broken connection) might have. */
function mightHaveApplied(error: unknown): boolean {
  if (surelyNotApplied(error)) return false;
  return !(error instanceof RaftlogError && error.statusCode >= 400 && error.statusCode < 500);
}

export function estimateRecordBytes(record: ProduceRecord): number {
  let bytes = RECORD_OVERHEAD_BYTES + Buffer.byteLength(record.value);
  if (typeof record.key === 'string') bytes += Buffer.byteLength(record.key);
  if (record.headers) {
    for (const [name, value] of Object.entries(record.headers)) {
      bytes += Buffer.byteLength(name) + (value === null ? 4 : Buffer.byteLength(value)) + 6;
    }
  }
  return bytes;
}
