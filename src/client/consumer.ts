// The Consumer: reads a topic's partitions by fetch (long-poll with waitMs), from any replica,
// tracking each partition's next offset; commits and reads consumer-group offsets. One fetch loop
// per partition feeds a bounded queue, so a busy partition never starves a quiet one and a slow
// reader stops the fetching instead of growing memory.

import { setTimeout as sleep } from 'node:timers/promises';
import type {
  Consistency,
  Encoding,
  FetchedRecord,
  FetchParams,
  FetchResponse,
  GroupOffset,
} from '../wire/types.js';
import type { CallOptions, RaftlogClient } from './client.js';
import { isRetriable, RaftlogError } from './errors.js';
import { type RetryOptions, type RetryPolicy, retryDelayMs, retryPolicy } from './retry.js';

export type StartOffset = 'earliest' | 'latest' | number;

const DEFAULT_WAIT_MS = 1000;
/** Pause after an empty fetch that returned before its waitMs. */
const EMPTY_POLL_PAUSE_MS = 100;

export interface ConsumerOptions {
  topic: string;
  /** Default: every partition of the topic (from describe). */
  partitions?: number[];
  /** Where a partition without a committed group offset starts. Default 'earliest'. */
  from?: StartOffset;
  /** Consumer group: start from its committed offsets, and commit() to it. */
  group?: string;
  /** Long-poll of each fetch when caught up. Default 1000. */
  waitMs?: number;
  limit?: number;
  maxBytes?: number;
  encoding?: Encoding;
  consistency?: Consistency;
  /** Per partition: wait until the replica's highWatermark passes this offset (read-your-writes). */
  minOffsets?: Record<number, number>;
  /**
   * What to do when the position fell below the log start (retention): restart from 'earliest'
   * (default: what is still there is better than nothing), jump to 'latest', or fail ('error').
   */
  onOutOfRange?: 'earliest' | 'latest' | 'error';
  /** Records fetched but not yet taken by the reader; a fetch loop pauses above it. */
  bufferRecordsMax?: number;
  /** Bound on consecutive failed fetches of one partition (503, network) before giving up. */
  retry?: RetryOptions;
}

export interface ConsumedRecord extends FetchedRecord {
  topic: string;
  partition: number;
}

export interface ReadOptions extends CallOptions {
  /** Keep reading as records commit (default); false: stop at each partition's high watermark. */
  follow?: boolean;
}

/** Fetch loops push here; the reader pulls. Bounded by bufferRecordsMax (plus one fetch). */
class RecordQueue {
  private readonly items: ConsumedRecord[] = [];
  private failure: unknown;
  private done = false;
  private wakeReader: (() => void) | undefined;
  private readonly roomWaiters: Array<() => void> = [];

  constructor(private readonly recordsMax: number) {}

  push(records: ConsumedRecord[]): void {
    for (const record of records) this.items.push(record);
    this.wakeReader?.();
  }

  fail(error: unknown): void {
    this.failure ??= error;
    this.wakeReader?.();
  }

  /** No more records will come; releases fetch loops waiting for room. */
  finish(): void {
    this.done = true;
    this.wakeReader?.();
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  /** Resolves when the reader has made room (or at once if there is room, or it is finished). */
  room(): Promise<void> {
    if (this.done || this.items.length < this.recordsMax) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Next record; undefined at the end. */
  async take(): Promise<ConsumedRecord | undefined> {
    while (this.items.length === 0) {
      if (this.failure !== undefined) throw this.failure;
      if (this.done) return undefined;
      await new Promise<void>((resolve) => {
        this.wakeReader = resolve;
      });
      this.wakeReader = undefined;
    }
    const record = this.items.shift()!;
    if (this.items.length < this.recordsMax) for (const wake of this.roomWaiters.splice(0)) wake();
    return record;
  }
}

export class Consumer {
  readonly topic: string;
  private readonly client: RaftlogClient;
  private readonly options: ConsumerOptions;
  private readonly retry: RetryPolicy;
  private readonly positionByPartition = new Map<number, number>();
  private readonly highWatermarkByPartition = new Map<number, number>();
  private readonly minOffsets = new Map<number, number>();
  private assigned: number[] | undefined;

  constructor(client: RaftlogClient, options: ConsumerOptions) {
    this.client = client;
    this.options = options;
    this.topic = options.topic;
    this.retry = retryPolicy(options.retry, { attemptsMax: 10 });
    for (const [partition, offset] of Object.entries(options.minOffsets ?? {})) {
      this.minOffsets.set(Number(partition), offset);
    }
  }

  /** The partitions read (asks the server once when not given). */
  async assignment(options: CallOptions = {}): Promise<number[]> {
    if (!this.assigned) {
      this.assigned =
        this.options.partitions ??
        (await this.client.describeTopic(this.topic, options)).partitions.map((p) => p.partition);
    }
    return this.assigned;
  }

  /** Next offset to read per partition, once known (after the first fetch or a seek). */
  positions(): Map<number, number> {
    return new Map(this.positionByPartition);
  }

  /** Last high watermark seen per partition. */
  highWatermarks(): Map<number, number> {
    return new Map(this.highWatermarkByPartition);
  }

  seek(partition: number, offset: number): void {
    this.positionByPartition.set(partition, offset);
  }

  /**
   * Yields records of every assigned partition as they arrive. With `follow: false` it ends once
   * each partition is read up to the high watermark seen by its first fetch. Ends without error
   * when the signal aborts.
   */
  async *records(options: ReadOptions = {}): AsyncGenerator<ConsumedRecord, void, undefined> {
    const follow = options.follow ?? true;
    const partitions = await this.assignment(options);
    await this.startPositions(partitions, options);
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const queue = new RecordQueue(this.options.bufferRecordsMax ?? 10_000);
    const loops = partitions.map((partition) => this.fetchLoop(partition, follow, queue, signal));
    void Promise.all(loops).then(() => queue.finish());
    const onAbort = () => queue.finish();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (let record = await queue.take(); record; record = await queue.take()) {
        if (signal.aborted) return;
        yield record;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      stop.abort();
      queue.finish();
      await Promise.allSettled(loops);
    }
  }

  /** One round: one fetch per assigned partition (with waitMs), concurrently. */
  async poll(options: CallOptions = {}): Promise<ConsumedRecord[]> {
    const partitions = await this.assignment(options);
    await this.startPositions(partitions, options);
    const rounds = await Promise.all(partitions.map((partition) => this.fetchOnce(partition, options)));
    return rounds.flat();
  }

  /** Commits the current positions (the next offset to read, as in Kafka) to the group. */
  async commit(options: CallOptions = {}): Promise<void> {
    const group = this.requireGroup();
    const offsets: GroupOffset[] = [...this.positionByPartition].map(([partition, offset]) => ({
      topic: this.topic,
      partition,
      offset,
    }));
    if (offsets.length > 0) await this.client.commitOffsets(group, offsets, options);
  }

  /** The group's committed offsets for this topic. */
  committed(options: CallOptions = {}): Promise<GroupOffset[]> {
    return this.client.groupOffsets(this.requireGroup(), { topic: this.topic }, options);
  }

  private requireGroup(): string {
    if (this.options.group === undefined) throw new TypeError('this consumer has no group');
    return this.options.group;
  }

  /** Fills in positions not yet known: the group's committed offsets when there is a group. */
  private async startPositions(partitions: number[], options: CallOptions): Promise<void> {
    const missing = partitions.filter((p) => !this.positionByPartition.has(p));
    if (missing.length === 0 || this.options.group === undefined) return;
    for (const { partition, offset } of await this.committed(options)) {
      if (missing.includes(partition)) this.positionByPartition.set(partition, offset);
    }
  }

  private async fetchLoop(partition: number, follow: boolean, queue: RecordQueue, signal: AbortSignal) {
    let endOffset: number | undefined;
    try {
      while (!signal.aborted) {
        await queue.room();
        const startedMs = Date.now();
        const response = await this.fetchWithRetry(partition, follow ? undefined : 0, signal);
        endOffset ??= response.highWatermark;
        queue.push(this.consumed(partition, response));
        if (!follow && (response.nextOffset >= endOffset || response.records.length === 0)) return;
        // An empty answer that came back before waitMs (a server that does not long-poll) must not
        // turn following into a busy loop against it.
        const early = Date.now() - startedMs < (this.options.waitMs ?? DEFAULT_WAIT_MS);
        if (response.records.length === 0 && early) await sleep(EMPTY_POLL_PAUSE_MS, undefined, { signal });
      }
    } catch (error) {
      if (!signal.aborted) queue.fail(error);
    }
  }

  private async fetchOnce(partition: number, options: CallOptions): Promise<ConsumedRecord[]> {
    const response = await this.fetchWithRetry(partition, undefined, options.signal);
    return this.consumed(partition, response);
  }

  /** Fetches from the position and advances it; resets on OFFSET_OUT_OF_RANGE per onOutOfRange. */
  private async fetchWithRetry(
    partition: number,
    waitMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<FetchResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.client.fetch(this.topic, partition, this.fetchParams(partition, waitMs), {
          signal,
        });
        this.advance(partition, response);
        return response;
      } catch (error) {
        signal?.throwIfAborted();
        if (attempt >= this.retry.attemptsMax) throw error;
        if (this.resetOutOfRange(partition, error)) continue;
        const retryAfterMs = error instanceof RaftlogError ? error.retryAfterMs : undefined;
        if (!isRetriable(error)) throw error;
        await sleep(retryDelayMs(this.retry, attempt, retryAfterMs), undefined, { signal });
      }
    }
  }

  private fetchParams(partition: number, waitMs: number | undefined): FetchParams {
    const options = this.options;
    return {
      offset: this.positionByPartition.get(partition) ?? options.from ?? 'earliest',
      limit: options.limit,
      maxBytes: options.maxBytes,
      waitMs: waitMs ?? options.waitMs ?? DEFAULT_WAIT_MS,
      encoding: options.encoding,
      consistency: options.consistency,
      minOffset: this.minOffsets.get(partition),
    };
  }

  private advance(partition: number, response: FetchResponse): void {
    this.positionByPartition.set(partition, response.nextOffset);
    this.highWatermarkByPartition.set(partition, response.highWatermark);
    const minOffset = this.minOffsets.get(partition);
    if (minOffset !== undefined && response.highWatermark > minOffset) this.minOffsets.delete(partition);
  }

  private resetOutOfRange(partition: number, error: unknown): boolean {
    if (!(error instanceof RaftlogError) || error.code !== 'OFFSET_OUT_OF_RANGE') return false;
    const policy = this.options.onOutOfRange ?? 'earliest';
    if (policy === 'error') return false;
    const logStartOffset = error.details.logStartOffset;
    const highWatermark = error.details.highWatermark;
    const target = policy === 'earliest' ? logStartOffset : highWatermark;
    if (typeof target === 'number') this.positionByPartition.set(partition, target);
    else this.positionByPartition.delete(partition); // Fall back to `from` on the next fetch.
    return true;
  }

  private consumed(partition: number, response: FetchResponse): ConsumedRecord[] {
    return response.records.map((record) => ({ ...record, topic: this.topic, partition }));
  }
}
