// The Consumer: reads one topic's partitions by fetch (long-poll with waitMs) from a replica each
// (readFrom), alone or as a member of a consumer group (group.ts). Fetched records wait in a
// bounded buffer per partition; the application takes them one by one (`for await`) or a batch at
// a time (`batches()`), round-robin over partitions at batch granularity.
//
// What is committed: per partition, the offset after the last record the application FINISHED,
// never one that was only fetched or delivered. A record is finished when the loop asks for the
// next one (the iterator moves past it) or, for a batch, when the loop asks for the next batch.
// The record in hand when the loop leaves by break, return or throw is not finished: the next
// loop gets it again first (and after a restart, whoever reads the partition next); markDone()
// finishes it explicitly.
//
//   fetch ──▶ buffered ──take──▶ in hand ──next()──▶ finished ──commit──▶ committed
//   seek:   drops buffered and in-flight records of the partition; finished = the new offset
//   revoke: drops buffered records; commits finished ones (fenced), then lets the partition go
//   lost:   (member expired) drops everything without committing: another member may own it

import {
  type DecodedFetch,
  type DecodedRecord,
  decodeFetchBinary,
  FETCH_BINARY_CONTENT_TYPE,
} from '../wire/fetch-binary.js';
import type { Consistency, FetchParams, FetchResponse, GroupOffset } from '../wire/types.js';
import { FETCH_LIMIT_MAX } from '../wire/types.js';
import { type CallOptions, withDeadline } from './call.js';
import type { Raftlog } from './client.js';
import { RaftlogError } from './errors.js';
import {
  DEFAULT_SESSION_TIMEOUT_MS,
  Membership,
  type MembershipAnswer,
  type MembershipHost,
} from './group.js';
import { partitionPath } from './paths.js';
import { type RetryOptions, type RetryPolicy, retryPolicy } from './retry.js';
import type { ReadFrom } from './router.js';

export type StartOffset = 'earliest' | 'latest' | number;

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** Why partitions are taken away: a rebalance (committed first), a lost membership (not committed), close(). */
export type RevokeReason = 'rebalance' | 'lost' | 'close';

export interface ConsumerOptions {
  topic: string;
  /**
   * Consumer group. Without `partitions`: join the group, read the partitions it assigns, commit
   * fenced. With `partitions`: read those, start from and commit to the group's offsets (plain).
   */
  group?: string;
  /** Read these partitions (no membership). Default: every partition, or the group's assignment. */
  partitions?: number[];
  /** Where a partition without a committed group offset starts. Default 'earliest'. */
  from?: StartOffset;
  /** Values (and keys) as Uint8Array: fetched as base64 and decoded. */
  binary?: boolean;
  /** Values parsed as JSON. */
  json?: boolean;
  /** Commit finished offsets every intervalMs and on close (default { intervalMs: 5000 }); false: only commit(). */
  autoCommit?: false | { intervalMs?: number };
  /** Group membership: the session the server keeps without a heartbeat (1,000 to 300,000; default 10,000). */
  sessionTimeoutMs?: number;
  /** Partitions given to this consumer; it reads them once this returns. */
  onAssign?: (partitions: TopicPartition[]) => void | Promise<void>;
  /**
   * Partitions taken away. With 'rebalance' and 'close' (and autoCommit) their finished offsets
   * are committed after this returns; without autoCommit, call commit() here: it covers them.
   * With 'lost' (the membership expired) nothing is committed: others may own them already.
   */
  onRevoke?: (partitions: TopicPartition[], reason: RevokeReason) => void | Promise<void>;
  /** Background failures that are retried (a heartbeat, an automatic commit). */
  onError?: (error: unknown) => void;
  /** Where fetches go (default: the client's, 'any'). */
  readFrom?: ReadFrom;
  /** Long-poll of each fetch when caught up. Default 1000. */
  waitMs?: number;
  /** Records per fetch (default 5000, at most 10,000). */
  limit?: number;
  maxBytes?: number;
  consistency?: Consistency;
  /** Per partition: wait until the replica's highWatermark passes this offset (read-your-writes). */
  minOffsets?: Record<number, number>;
  /**
   * What to do when the position fell below the log start (retention): restart from 'earliest'
   * (default: what is still there is better than nothing), jump to 'latest', or fail ('error').
   */
  onOutOfRange?: 'earliest' | 'latest' | 'error';
  /** Records fetched and not yet taken; fetching pauses above it (plus one fetch per partition). */
  bufferRecordsMax?: number;
  /** Retries of each fetch (503, network) before the reader fails (defaults: 10 attempts, 30 s). */
  retry?: RetryOptions;
}

export interface JsonConsumerOptions extends ConsumerOptions {
  json: true;
}

/** A consumed record. Keys and headers absent in the log are null. */
export interface ConsumedRecord<V = string> {
  topic: string;
  partition: number;
  offset: number;
  key: (V extends Uint8Array ? Uint8Array : string) | null;
  value: V;
  headers: Record<string, string | null> | null;
  timestamp: number;
}

/** Records of one partition, in order: one fetch's worth or what was left of it. */
export interface ConsumedBatch<V = string> {
  topic: string;
  partition: number;
  records: ConsumedRecord<V>[];
  /** The partition's high watermark as the replica last reported it. */
  highWatermark: number;
}

export interface ReadOptions {
  /** Ends the iteration (without error) at the next record; the record in hand counts as finished. */
  signal?: AbortSignal;
  /** Keep reading as records commit (default); false: stop at each partition's high watermark. */
  follow?: boolean;
}

const DEFAULT_WAIT_MS = 1000;
const DEFAULT_LIMIT = 5000;
const DEFAULT_BUFFER_RECORDS_MAX = 10_000;
const DEFAULT_AUTO_COMMIT_INTERVAL_MS = 5000;
/** Pause after an empty fetch that returned before its waitMs, or a replica that is behind. */
const EMPTY_POLL_PAUSE_MS = 100;
/** Asks for the binary fetch answer (wire/fetch-binary.ts); JSON is still understood. */
const BINARY_ACCEPT: Readonly<Record<string, string>> = Object.freeze({
  accept: `${FETCH_BINARY_CONTENT_TYPE}, application/json`,
});
const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

interface FetchedBatch {
  /** Decoded but for `json: true` values, which are parsed as they are delivered. */
  records: DecodedRecord[];
  next: number;
}

/** One partition being read. */
class PartitionState {
  /** Next offset to fetch; a start position until the first answer resolves it. */
  fetchOffset: StartOffset;
  readonly batches: FetchedBatch[] = [];
  buffered = 0;
  /** Offset after the last record delivered to the application. */
  delivered: number | undefined;
  // Invariant: committed <= finished <= delivered (unless a seek set finished elsewhere).
  /** Offset after the last record the application finished: what a commit sends. */
  finished: number | undefined;
  committed: number | undefined;
  /** Bumped by seek and revoke: answers and finishes from before are ignored. */
  epoch = 0;
  fetch: AbortController | undefined;
  highWatermark = 0;
  minOffset: number | undefined;
  /** follow: false: the high watermark of the first fetch of the read; ended once reached. */
  endOffset: number | undefined;
  ended = false;
  /** Being revoked: nothing more is delivered; the in-hand record may still finish. */
  revoking = false;
  /** No fetch before this time (an early empty answer, a replica behind). */
  retryAtMs = 0;

  constructor(
    readonly partition: number,
    start: StartOffset,
    committed: number | undefined,
  ) {
    this.fetchOffset = start;
    this.committed = committed;
    this.finished = committed;
  }

  dropBuffered(): number {
    const dropped = this.buffered;
    this.batches.length = 0;
    this.buffered = 0;
    return dropped;
  }
}

interface ReadSession {
  follow: boolean;
  signal: AbortSignal | undefined;
  /** Aborts the session's fetches when it ends. */
  readonly stop: AbortController;
  started: Promise<void> | undefined;
  /** `started` has resolved: the loop may take records without waiting. */
  ready: boolean;
  ended: boolean;
}

export class Consumer<V = string> implements AsyncIterable<ConsumedRecord<V>>, MembershipHost {
  readonly topic: string;
  readonly group: string | undefined;
  private readonly client: Raftlog;
  private readonly options: ConsumerOptions;
  private readonly retry: RetryPolicy;
  private readonly readFrom: ReadFrom;
  private readonly bufferRecordsMax: number;
  private readonly autoCommitIntervalMs: number | undefined;
  private readonly membership: Membership | undefined;
  private readonly states = new Map<number, PartitionState>();
  /** The states in partition order, for round-robin delivery and fetching. */
  private order: PartitionState[] = [];
  private cursor = 0;
  private current: PartitionState | undefined;
  private readonly paused = new Set<number>();
  private readonly pendingSeeks = new Map<number, StartOffset>();
  private totalBuffered = 0;
  /** The fetching stopped at bufferRecordsMax: the reader restarts it once below. */
  private starved = false;
  private session: ReadSession | undefined;
  private wakeReader: (() => void) | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  private failure: unknown;
  private closed = false;
  private staticAssignment: Promise<void> | undefined;
  private autoCommitTimer: NodeJS.Timeout | undefined;
  private committing: Promise<GroupOffset[]> | undefined;
  /** The generation of the assignment being read (set as its revocations start). */
  private assignedGeneration: number | undefined;
  /** A membership answer is being applied: a commit must not wait for the membership's next call. */
  private applying = false;
  /** The membership lapsed (no heartbeat answer for a session): nothing is delivered or fetched. */
  private suspended = false;
  // The record (or batch) in hand: finished when the reader asks for the next one.
  private inHandState: PartitionState | undefined;
  private inHandEpoch = 0;
  private inHandFinish = 0;
  /** Where the in-hand record(s) came from, to put them back if the loop leaves without finishing. */
  private inHandBatch: FetchedBatch | undefined;
  private inHandStart = 0;

  constructor(client: Raftlog, options: ConsumerOptions) {
    if (typeof options?.topic !== 'string') throw new TypeError('consumer: topic is required');
    if (options.json && options.binary) throw new TypeError('consumer: json and binary exclude each other');
    this.client = client;
    this.options = options;
    this.topic = options.topic;
    this.group = options.group;
    this.retry = retryPolicy(options.retry, { attemptsMax: 10, totalMsMax: 30_000 });
    this.readFrom = options.readFrom ?? client.readFrom;
    this.bufferRecordsMax = options.bufferRecordsMax ?? DEFAULT_BUFFER_RECORDS_MAX;
    const limit = options.limit ?? DEFAULT_LIMIT;
    if (!(limit >= 1 && limit <= FETCH_LIMIT_MAX))
      throw new RangeError(`limit must be 1 to ${FETCH_LIMIT_MAX}`);
    if (options.group !== undefined && options.autoCommit !== false) {
      this.autoCommitIntervalMs = options.autoCommit?.intervalMs ?? DEFAULT_AUTO_COMMIT_INTERVAL_MS;
    }
    if (options.group !== undefined && options.partitions === undefined) {
      this.membership = new Membership(client, this, {
        group: options.group,
        topic: options.topic,
        sessionTimeoutMs: options.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS,
        retry: this.retry,
      });
    }
  }

  // Reading.

  /** `for await (const record of consumer)`: records(), following. */
  [Symbol.asyncIterator](): AsyncIterator<ConsumedRecord<V>> {
    return this.records();
  }

  /** Records of every assigned partition as they arrive (one reader at a time). */
  records(options: ReadOptions = {}): AsyncIterableIterator<ConsumedRecord<V>> {
    const session = this.openSession(options);
    const iterator: AsyncIterableIterator<ConsumedRecord<V>> = {
      next: () => this.nextRecord(session),
      return: () => this.abandonSession(session),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** The same records a batch at a time: a batch is finished when the loop asks for the next. */
  batches(options: ReadOptions = {}): AsyncIterableIterator<ConsumedBatch<V>> {
    const session = this.openSession(options);
    const iterator: AsyncIterableIterator<ConsumedBatch<V>> = {
      next: () => this.nextBatch(session),
      return: () => this.abandonSession(session),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * Counts `record` (and every earlier record of its partition) as finished now, e.g. before
   * leaving the loop with break. Only records already delivered can be finished.
   */
  markDone(record: { partition: number; offset: number }): void {
    const state = this.states.get(record.partition);
    if (!state || state.delivered === undefined || record.offset >= state.delivered) return;
    const finish = record.offset + 1;
    if (state.finished === undefined || finish > state.finished) state.finished = finish;
    // Finished records of the batch in hand are not given again when the loop leaves early.
    const batch = this.inHandBatch;
    if (this.inHandState !== state || !batch || state.epoch !== this.inHandEpoch) return;
    if (finish >= this.inHandFinish) {
      this.inHandState = undefined;
      this.inHandBatch = undefined;
      return;
    }
    const first = batch.records[this.inHandStart]!.offset;
    if (finish > first) this.inHandStart += finish - first;
  }

  // Position and flow.

  /** Partitions this consumer reads now. */
  assignment(): number[] {
    return this.order.filter((s) => !s.revoking).map((s) => s.partition);
  }

  /**
   * In a group: this member's id and the generation of the assignment it reads (`assignment()`
   * is that generation's, or part of it while partitions move); undefined when not a member.
   */
  groupMember(): { memberId: string; generation: number } | undefined {
    const memberId = this.membership?.memberId;
    if (memberId === undefined || this.assignedGeneration === undefined) return undefined;
    return { memberId, generation: this.assignedGeneration };
  }

  /** Per partition: the offset of the next record the application will get, once known. */
  positions(): Map<number, number> {
    const positions = new Map<number, number>();
    for (const state of this.order) {
      const head = state.batches[0];
      const next = head ? head.records[head.next]!.offset : state.fetchOffset;
      if (typeof next === 'number') positions.set(state.partition, next);
    }
    return positions;
  }

  /** Per partition: the offset a commit would send (after the last finished record). */
  finishedOffsets(): Map<number, number> {
    const finished = new Map<number, number>();
    for (const state of this.order)
      if (state.finished !== undefined) finished.set(state.partition, state.finished);
    return finished;
  }

  /** Last high watermark seen per partition. */
  highWatermarks(): Map<number, number> {
    return new Map(this.order.map((s) => [s.partition, s.highWatermark]));
  }

  /**
   * Reads `partition` from `offset` next: records buffered or in flight are dropped, and a
   * numeric offset becomes what a commit sends for it (as a seek does in Kafka).
   */
  seek(partition: number, offset: StartOffset): void {
    const state = this.states.get(partition);
    if (!state) {
      if (this.membership) throw new RangeError(`partition ${partition} is not assigned to this consumer`);
      this.pendingSeeks.set(partition, offset);
      return;
    }
    this.resetPartition(state);
    state.fetchOffset = offset;
    state.delivered = undefined;
    state.ended = false;
    state.endOffset = undefined;
    if (typeof offset === 'number') state.finished = offset;
    this.pump();
  }

  /** Stops fetching and delivering these partitions until resume(); what was fetched stays. */
  pause(partitions: number[]): void {
    for (const partition of partitions) {
      this.paused.add(partition);
      const state = this.states.get(partition);
      if (state?.fetch) {
        state.fetch.abort();
        state.fetch = undefined;
      }
    }
  }

  resume(partitions: number[]): void {
    for (const partition of partitions) this.paused.delete(partition);
    this.pump();
    this.wake();
  }

  /** Paused partitions. */
  pausedPartitions(): number[] {
    return [...this.paused];
  }

  // Commits.

  /**
   * Commits, per partition read, the offset after the last finished record (when it moved).
   * In a group, fenced: partitions this member no longer owns are skipped (their new owner reads
   * them again from the last commit: at least once). Resolves with what was committed.
   */
  commit(options?: CallOptions): Promise<GroupOffset[]> {
    if (this.group === undefined) return Promise.reject(new TypeError('this consumer has no group'));
    return withDeadline(options, 'commit', (signal) => this.commitFinished(signal));
  }

  /** The group's committed offsets for this topic, as the server has them. */
  committed(options?: CallOptions): Promise<GroupOffset[]> {
    if (this.group === undefined) return Promise.reject(new TypeError('this consumer has no group'));
    return this.client.groupOffsets(this.group, { topic: this.topic }, options);
  }

  /**
   * Stops reading, commits finished offsets (with autoCommit), calls onRevoke(…, 'close'), and
   * leaves the group. A record the loop is still working on is not committed: stop the loop
   * first (a signal to records(), or break) to have it counted. Does not close the client.
   */
  async close(options?: CallOptions): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.autoCommitTimer);
    clearTimeout(this.pumpTimer);
    if (this.session) this.endSession(this.session);
    this.wake();
    for (const state of this.order) this.resetFetch(state);
    await withDeadline(options, 'close consumer', async (signal) => {
      try {
        await this.committing?.catch(() => undefined);
        const membership = this.membership;
        if (membership) await membership.quiesce();
        const owned = this.order.filter((s) => !s.revoking);
        // onRevoke first (it may finish a record with markDone, or commit() itself), then commit.
        if (owned.length > 0) await this.callback(this.options.onRevoke, owned, 'close');
        if (this.group !== undefined && this.autoCommitIntervalMs !== undefined && owned.length > 0) {
          if (!membership || membership.joined)
            await this.commitStates(owned, signal, membership?.generation);
        }
        if (membership) await membership.leave(signal);
      } finally {
        this.membership?.abandon();
      }
    });
  }

  // MembershipHost: called by the group membership, one at a time.

  /** @internal */
  async applyAssignment(answer: MembershipAnswer): Promise<boolean> {
    const assigned = new Map<number, number | undefined>();
    for (const a of answer.assignments ?? []) if (a.topic === this.topic) assigned.set(a.partition, a.offset);
    const revoked = this.order.filter((s) => !assigned.has(s.partition));
    const added = [...assigned.keys()].filter((p) => !this.states.has(p)).sort((a, b) => a - b);
    // What assignment() shows from here on (revoked partitions stop delivering synchronously in
    // revoke()) is a part of this generation's assignment.
    this.assignedGeneration = answer.generation;
    if (revoked.length === 0 && added.length === 0) return false;
    this.applying = true;
    try {
      await this.applyChange(assigned, revoked, added, answer.generation);
    } finally {
      this.applying = false;
    }
    this.pump();
    this.wake();
    return true;
  }

  private async applyChange(
    assigned: Map<number, number | undefined>,
    revoked: PartitionState[],
    added: number[],
    generation: number,
  ): Promise<void> {
    if (revoked.length > 0) await this.revoke(revoked, generation);
    for (const partition of added) {
      const committed = assigned.get(partition);
      const state = new PartitionState(partition, committed ?? this.options.from ?? 'earliest', committed);
      state.minOffset = this.options.minOffsets?.[partition];
      this.states.set(partition, state);
    }
    this.rebuildOrder();
    if (added.length > 0) {
      await this.callback(
        this.options.onAssign,
        added.map((p) => this.states.get(p)!),
      );
    }
  }

  /** @internal */
  suspendDelivery(): void {
    this.suspended = true;
  }

  /** @internal */
  resumeDelivery(): void {
    if (!this.suspended) return;
    this.suspended = false;
    this.pump();
    this.wake();
  }

  /** @internal */
  async loseAll(): Promise<void> {
    this.assignedGeneration = undefined;
    const lost = [...this.order];
    for (const state of lost) this.stopDelivering(state);
    if (lost.length > 0) await this.callback(this.options.onRevoke, lost, 'lost');
    for (const state of lost) this.forget(state);
    this.rebuildOrder();
  }

  /** @internal */
  reportError(error: unknown): void {
    try {
      this.options.onError?.(error);
    } catch {
      // A failing error handler must not stop the consumer.
    }
  }

  /** @internal */
  fail(error: unknown): void {
    this.failure ??= error;
    this.wake();
  }

  // Sessions (one reader at a time).

  private openSession(options: ReadOptions): ReadSession {
    if (this.closed) throw new RaftlogError('CLOSED', 'consumer is closed');
    if (this.session && !this.session.ended) {
      throw new TypeError('this consumer is already being read: one loop at a time');
    }
    const session: ReadSession = {
      follow: options.follow ?? true,
      signal: options.signal,
      stop: new AbortController(),
      started: undefined,
      ready: false,
      ended: false,
    };
    this.session = session;
    options.signal?.addEventListener('abort', () => this.wake(), { once: true });
    return session;
  }

  private async start(session: ReadSession): Promise<void> {
    if (this.membership) {
      await this.membership.ensureJoined();
    } else {
      this.staticAssignment ??= this.assignStatic(session.signal);
      await this.staticAssignment;
    }
    if (!session.follow) {
      for (const state of this.order) {
        state.endOffset = undefined;
        state.ended = false;
      }
    }
    if (this.autoCommitIntervalMs !== undefined && this.autoCommitTimer === undefined) {
      this.autoCommitTimer = setInterval(() => this.autoCommit(), this.autoCommitIntervalMs);
      this.autoCommitTimer.unref();
    }
    this.pump();
  }

  /** Without membership: the given partitions (or all), from seeks, the group's offsets, or `from`. */
  private async assignStatic(signal: AbortSignal | undefined): Promise<void> {
    try {
      const partitions =
        this.options.partitions ??
        (await this.client.describeTopic(this.topic, { signal })).partitions.map((p) => p.partition);
      const committed = new Map<number, number>();
      if (this.group !== undefined) {
        for (const o of await this.client.groupOffsets(this.group, { topic: this.topic }, { signal })) {
          committed.set(o.partition, o.offset);
        }
      }
      for (const partition of partitions) {
        if (this.states.has(partition)) continue;
        const offset = committed.get(partition);
        const start = this.pendingSeeks.get(partition) ?? offset ?? this.options.from ?? 'earliest';
        const state = new PartitionState(partition, start, offset);
        const seek = this.pendingSeeks.get(partition);
        if (typeof seek === 'number') state.finished = seek;
        state.minOffset = this.options.minOffsets?.[partition];
        this.states.set(partition, state);
      }
      this.pendingSeeks.clear();
      this.rebuildOrder();
    } catch (error) {
      this.staticAssignment = undefined; // Ask again on the next read.
      throw error;
    }
  }

  private nextRecord(session: ReadSession): Promise<IteratorResult<ConsumedRecord<V>>> {
    return this.next(session, () => this.takeRecord());
  }

  private nextBatch(session: ReadSession): Promise<IteratorResult<ConsumedBatch<V>>> {
    return this.next(session, () => this.takeBatch());
  }

  /** The common case without a wait: the loop is running and a record is buffered. */
  private next<T>(session: ReadSession, take: () => T | undefined): Promise<IteratorResult<T>> {
    if (!session.ready || this.failure !== undefined || this.sessionOver(session)) {
      return this.nextOrWait(session, take);
    }
    this.finishInHand();
    let taken: T | undefined;
    try {
      taken = take();
    } catch (error) {
      this.inHandState = undefined;
      this.endSession(session);
      return Promise.reject(error);
    }
    return taken === undefined
      ? this.nextOrWait(session, take, true)
      : Promise.resolve({ done: false, value: taken });
  }

  private async nextOrWait<T>(
    session: ReadSession,
    take: () => T | undefined,
    finished = false,
  ): Promise<IteratorResult<T>> {
    await this.enter(session);
    if (!finished) this.finishInHand();
    try {
      for (;;) {
        if (this.failure !== undefined) {
          // Reported once: a later loop tries again (a cluster that was down may be back).
          const failure = this.failure;
          this.failure = undefined;
          throw failure;
        }
        if (this.sessionOver(session)) return this.leaveSession(session);
        const taken = take();
        if (taken !== undefined) return { done: false, value: taken };
        if (!session.follow && this.allEnded()) return this.leaveSession(session);
        await this.waitForData();
      }
    } catch (error) {
      // The loop ends with this error (a failed fetch, a value that is not JSON): a later loop
      // goes on after the record that failed to decode, which is not finished.
      this.inHandState = undefined;
      this.endSession(session);
      throw error;
    }
  }

  private async enter(session: ReadSession): Promise<void> {
    if (session.ended || session.ready) return;
    session.started ??= this.start(session);
    try {
      await session.started;
      session.ready = true;
    } catch (error) {
      this.endSession(session);
      throw error;
    }
  }

  private sessionOver(session: ReadSession): boolean {
    return session.ended || this.closed || session.signal?.aborted === true;
  }

  /** Ends the read (loop done or signal: the record in hand was finished by then). */
  private async leaveSession(session: ReadSession): Promise<IteratorReturnResult<undefined>> {
    this.endSession(session);
    return DONE;
  }

  /**
   * The loop left by break, return or throw: the record (or batch) in hand is not finished, so it
   * goes back to the front of its partition and the next loop gets it first.
   */
  private async abandonSession(session: ReadSession): Promise<IteratorReturnResult<undefined>> {
    if (!session.ended) this.rewindInHand();
    this.endSession(session);
    return DONE;
  }

  private rewindInHand(): void {
    const state = this.inHandState;
    const batch = this.inHandBatch;
    this.inHandState = undefined;
    this.inHandBatch = undefined;
    if (!state || !batch || state.epoch !== this.inHandEpoch || state.revoking) return;
    const count = batch.next - this.inHandStart;
    batch.next = this.inHandStart;
    if (state.batches[0] !== batch) state.batches.unshift(batch);
    state.buffered += count;
    this.totalBuffered += count;
    state.delivered = batch.records[batch.next]!.offset;
  }

  private endSession(session: ReadSession): void {
    if (session.ended) return;
    session.ended = true;
    session.stop.abort();
    this.inHandState = undefined;
    this.inHandBatch = undefined;
    if (this.session === session) this.session = undefined;
    for (const state of this.order) if (state.fetch) this.resetFetch(state);
  }

  private waitForData(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeReader = resolve;
    });
  }

  private wake(): void {
    const wake = this.wakeReader;
    this.wakeReader = undefined;
    wake?.();
  }

  // Delivery.

  private finishInHand(): void {
    const state = this.inHandState;
    if (state === undefined) return;
    this.inHandState = undefined;
    this.inHandBatch = undefined;
    if (state.epoch !== this.inHandEpoch) return; // Sought or revoked since.
    if (state.finished === undefined || this.inHandFinish > state.finished)
      state.finished = this.inHandFinish;
  }

  /** The partition to take from: the current one until its batch is done, then the next with records. */
  private deliverable(): PartitionState | undefined {
    if (this.suspended) return undefined;
    const current = this.current;
    if (current && current.buffered > 0 && !current.revoking && !this.paused.has(current.partition))
      return current;
    const order = this.order;
    for (let i = 0; i < order.length; i++) {
      this.cursor = (this.cursor + 1) % order.length;
      const state = order[this.cursor]!;
      if (state.buffered > 0 && !state.revoking && !this.paused.has(state.partition)) {
        this.current = state;
        return state;
      }
    }
    this.current = undefined;
    return undefined;
  }

  private takeRecord(): ConsumedRecord<V> | undefined {
    const state = this.deliverable();
    if (!state) return undefined;
    const batch = state.batches[0]!;
    const start = batch.next;
    const raw = batch.records[batch.next++]!;
    if (batch.next === batch.records.length) {
      state.batches.shift();
      this.current = undefined; // Next batch from the next partition: fair at batch granularity.
    }
    this.took(state, batch, start, 1);
    return this.decode(state.partition, raw);
  }

  private takeBatch(): ConsumedBatch<V> | undefined {
    const state = this.deliverable();
    if (!state) return undefined;
    const batch = state.batches.shift()!;
    this.current = undefined;
    const start = batch.next;
    const raws = start === 0 ? batch.records : batch.records.slice(start);
    batch.next = batch.records.length;
    this.took(state, batch, start, raws.length);
    const records = new Array<ConsumedRecord<V>>(raws.length);
    for (let i = 0; i < raws.length; i++) records[i] = this.decode(state.partition, raws[i]!);
    return { topic: this.topic, partition: state.partition, records, highWatermark: state.highWatermark };
  }

  private took(state: PartitionState, batch: FetchedBatch, start: number, count: number): void {
    const finish = batch.records[start + count - 1]!.offset + 1;
    state.buffered -= count;
    this.totalBuffered -= count;
    state.delivered = finish;
    this.inHandState = state;
    this.inHandEpoch = state.epoch;
    this.inHandFinish = finish;
    this.inHandBatch = batch;
    this.inHandStart = start;
    if (this.starved && this.totalBuffered < this.bufferRecordsMax) {
      this.starved = false;
      this.pump();
    }
  }

  private decode(partition: number, raw: DecodedRecord): ConsumedRecord<V> {
    if (!this.options.json || this.options.binary) return raw as ConsumedRecord<V>;
    let value: unknown;
    try {
      value = JSON.parse(raw.value as string);
    } catch (error) {
      throw new RaftlogError(
        'INVALID_JSON',
        `${this.topic}/${partition} offset ${raw.offset}: the value is not JSON (json: true)`,
        { details: { topic: this.topic, partition, offset: raw.offset, value: raw.value }, cause: error },
      );
    }
    return { ...raw, value } as ConsumedRecord<V>;
  }

  /**
   * A fetch answer's body: the binary answer (what the consumer asks for: the node copies stored
   * batches, no JSON), or JSON from a node that answered for another (forwarded requests are JSON).
   */
  private readAnswer(partition: number, body: Buffer, contentType: string): DecodedFetch {
    const binary = this.options.binary === true;
    if (contentType.startsWith(FETCH_BINARY_CONTENT_TYPE))
      return decodeFetchBinary(body, this.topic, partition, binary);
    const answer = JSON.parse(body.toString('utf8')) as FetchResponse;
    const records = answer.records.map(
      (raw): DecodedRecord => ({
        topic: this.topic,
        partition,
        offset: raw.offset,
        key: raw.key == null ? null : binary ? Buffer.from(raw.key, 'base64') : raw.key,
        value: binary ? Buffer.from(raw.value, 'base64') : raw.value,
        headers: raw.headers ?? null,
        timestamp: raw.timestamp,
      }),
    );
    return { ...answer, records };
  }

  private allEnded(): boolean {
    for (const state of this.order) if (!state.ended || state.buffered > 0) return false;
    return true;
  }

  // Fetching.

  /** Starts a fetch for every partition that may fetch now, within the buffer bound. */
  private pump(): void {
    const session = this.session;
    if (!session || session.ended || !session.started || this.closed || this.failure !== undefined) return;
    if (this.suspended) return;
    const nowMs = Date.now();
    let retryAtMs = Number.POSITIVE_INFINITY;
    for (const state of this.order) {
      if (state.fetch || state.ended || state.revoking || this.paused.has(state.partition)) continue;
      if (this.totalBuffered >= this.bufferRecordsMax) {
        this.starved = true;
        break;
      }
      if (state.retryAtMs > nowMs) {
        retryAtMs = Math.min(retryAtMs, state.retryAtMs);
        continue;
      }
      void this.fetchOnce(state, session);
    }
    if (retryAtMs !== Number.POSITIVE_INFINITY && this.pumpTimer === undefined) {
      this.pumpTimer = setTimeout(() => {
        this.pumpTimer = undefined;
        this.pump();
      }, retryAtMs - nowMs);
    }
  }

  private async fetchOnce(state: PartitionState, session: ReadSession): Promise<void> {
    const controller = new AbortController();
    state.fetch = controller;
    const signal = AbortSignal.any([session.stop.signal, controller.signal]);
    const params = this.fetchParams(state);
    const startedMs = Date.now();
    try {
      const answer = await this.client.execute<DecodedFetch>(
        {
          method: 'GET',
          path: `${partitionPath(this.topic, state.partition)}/records`,
          query: params as Record<string, string | number | undefined>,
          signal,
          serverWaitMs: params.waitMs,
          headers: BINARY_ACCEPT,
          parse: (body, contentType) => this.readAnswer(state.partition, body, contentType),
        },
        {
          target: (attempt, attemptSignal) =>
            this.client.replicaUrl(this.topic, state.partition, this.readFrom, attempt, attemptSignal),
          safety: 'idempotent',
          signal,
          retry: this.retry,
          onFailure: (error) => this.client.onLeaderTrouble(this.topic, error),
        },
      );
      if (state.fetch !== controller) return; // Sought, paused or revoked meanwhile.
      if (answer.servedBy !== undefined) this.client.router.invalidate(this.topic);
      this.accept(state, answer.body, session, Date.now() - startedMs < (params.waitMs ?? 0));
    } catch (error) {
      if (state.fetch !== controller || signal.aborted) return;
      this.fetchFailed(state, error);
    } finally {
      if (state.fetch === controller) state.fetch = undefined;
      this.pump();
    }
  }

  private fetchParams(state: PartitionState): FetchParams {
    const options = this.options;
    return {
      offset: state.fetchOffset,
      limit: options.limit ?? DEFAULT_LIMIT,
      maxBytes: options.maxBytes,
      waitMs: options.waitMs ?? DEFAULT_WAIT_MS,
      encoding: options.binary ? 'base64' : undefined,
      consistency: options.consistency,
      minOffset: state.minOffset,
    };
  }

  private accept(state: PartitionState, response: DecodedFetch, session: ReadSession, early: boolean): void {
    state.highWatermark = response.highWatermark;
    if (state.minOffset !== undefined && response.highWatermark > state.minOffset)
      state.minOffset = undefined;
    const records = response.records;
    if (!session.follow && state.endOffset === undefined) state.endOffset = response.highWatermark;
    if (records.length > 0) {
      state.batches.push({ records, next: 0 });
      state.buffered += records.length;
      this.totalBuffered += records.length;
    }
    state.fetchOffset = response.nextOffset;
    if (!session.follow && (response.nextOffset >= state.endOffset! || records.length === 0))
      state.ended = true;
    // An empty answer before waitMs (a server that does not long-poll) must not become a busy loop.
    if (records.length === 0 && early) state.retryAtMs = Date.now() + EMPTY_POLL_PAUSE_MS;
    this.wake();
  }

  private fetchFailed(state: PartitionState, error: unknown): void {
    if (error instanceof RaftlogError && error.code === 'OFFSET_OUT_OF_RANGE') {
      const { logStartOffset, highWatermark } = error.details;
      const offset = state.fetchOffset;
      if (typeof offset === 'number' && typeof highWatermark === 'number' && offset > highWatermark) {
        state.retryAtMs = Date.now() + EMPTY_POLL_PAUSE_MS; // This replica is behind another one.
        return;
      }
      const policy = this.options.onOutOfRange ?? 'earliest';
      if (policy !== 'error') {
        const target = policy === 'earliest' ? logStartOffset : highWatermark;
        state.fetchOffset = typeof target === 'number' ? target : policy;
        return;
      }
    }
    this.fail(error);
  }

  private resetFetch(state: PartitionState): void {
    state.fetch?.abort();
    state.fetch = undefined;
  }

  /** Drops what was fetched or is in flight for the partition; its in-hand record no longer finishes. */
  private resetPartition(state: PartitionState): void {
    this.resetFetch(state);
    this.totalBuffered -= state.dropBuffered();
    state.epoch++;
    if (this.current === state) this.current = undefined;
  }

  private stopDelivering(state: PartitionState): void {
    state.revoking = true;
    this.resetFetch(state);
    this.totalBuffered -= state.dropBuffered();
    if (this.current === state) this.current = undefined;
  }

  private forget(state: PartitionState): void {
    state.epoch++;
    this.states.delete(state.partition);
  }

  private rebuildOrder(): void {
    this.order = [...this.states.values()].sort((a, b) => a.partition - b.partition);
    this.cursor = this.order.length > 0 ? this.cursor % this.order.length : 0;
  }

  // Revocation and commits.

  /**
   * Partitions leave this member: stop delivering them, let onRevoke run (the record in hand may
   * still finish meanwhile), commit what was finished (fenced), then forget them.
   */
  private async revoke(revoked: PartitionState[], generation: number): Promise<void> {
    for (const state of revoked) this.stopDelivering(state);
    await this.callback(this.options.onRevoke, revoked, 'rebalance');
    if (this.autoCommitIntervalMs !== undefined) {
      try {
        await this.commitRevoked(revoked, generation);
      } catch (error) {
        this.reportError(error); // Not committed: the new owner reads them again (at least once).
      }
    }
    for (const state of revoked) this.forget(state);
    this.rebuildOrder();
  }

  /**
   * A revoked partition is still this member's until it heartbeats with the new generation: its
   * commit carries the new generation, and, should the server fence by the generation that
   * assigned it, the previous one.
   */
  private async commitRevoked(revoked: PartitionState[], generation: number): Promise<void> {
    try {
      await this.commitStates(revoked, undefined, generation);
    } catch (error) {
      const previous = this.membership?.generation;
      const stale = error instanceof RaftlogError && error.code === 'STALE_GENERATION';
      if (!stale || previous === undefined || previous === generation) throw error;
      await this.commitStates(revoked, undefined, previous);
    }
  }

  private autoCommit(): void {
    if (this.closed || this.committing) return;
    this.commitFinished(undefined).catch((error: unknown) => this.reportError(error));
  }

  private commitFinished(signal: AbortSignal | undefined): Promise<GroupOffset[]> {
    const run = this.commitOwned(signal).finally(() => {
      if (this.committing === run) this.committing = undefined;
    });
    this.committing = run;
    return run;
  }

  private async commitOwned(signal: AbortSignal | undefined): Promise<GroupOffset[]> {
    // Partitions being revoked are still this member's until its next heartbeat, which waits for
    // onRevoke: a commit() from inside onRevoke (autoCommit: false) commits them too.
    const owned = () => this.order;
    const membership = this.membership;
    if (membership && !membership.joined) return [];
    try {
      return await this.commitStates(owned(), signal, membership?.generation);
    } catch (error) {
      if (!(membership && error instanceof RaftlogError && error.code === 'STALE_GENERATION')) throw error;
      // Inside onRevoke or onAssign the membership waits for this commit: asking it would hang.
      if (this.applying) throw error;
      // A rebalance this member has not heard of yet: learn the assignment (revoked partitions
      // are let go), then commit what it still owns.
      await membership.refresh();
      if (!membership.joined) return [];
      return this.commitStates(owned(), signal, membership.generation);
    }
  }

  /** Commits the finished offsets of `states` that moved since their last commit. */
  private async commitStates(
    states: PartitionState[],
    signal: AbortSignal | undefined,
    generation: number | undefined,
  ): Promise<GroupOffset[]> {
    const offsets: GroupOffset[] = [];
    const sent: Array<[PartitionState, number]> = [];
    for (const state of states) {
      const finished = state.finished;
      if (finished === undefined || finished === state.committed) continue;
      offsets.push({ topic: this.topic, partition: state.partition, offset: finished });
      sent.push([state, finished]);
    }
    if (offsets.length === 0) return offsets;
    const membership = this.membership;
    if (membership) await membership.commit(offsets, signal, generation);
    else await this.client.commitOffsets(this.group!, offsets, { signal });
    for (const [state, offset] of sent) state.committed = offset;
    return offsets;
  }

  private async callback(
    callback: ((partitions: TopicPartition[], reason: RevokeReason) => void | Promise<void>) | undefined,
    states: PartitionState[],
    reason?: RevokeReason,
  ): Promise<void> {
    if (!callback) return;
    const partitions = states.map((s) => ({ topic: this.topic, partition: s.partition }));
    try {
      await callback(partitions, reason as RevokeReason);
    } catch (error) {
      this.reportError(error);
    }
  }
}
