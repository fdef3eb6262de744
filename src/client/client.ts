// Raftlog: the SDK's entry point. One method per route of the client contract (docs/api.md),
// over one connection pool per node, routed by what the client knows of the cluster (router.ts):
// produce to the partition leader, fetches to a replica, the rest to any node. Each request is
// retried where the contract makes that safe (see `execute`). Producer and Consumer build on it.

import type {
  ClusterResponse,
  CreateTopicRequest,
  FetchParams,
  FetchResponse,
  GroupOffset,
  ListTopicsResponse,
  OffsetForTimeResponse,
  ProduceRequest,
  ProduceResponse,
  StreamParams,
  TopicDescription,
  TransferLeaderRequest,
} from '../wire/types.js';
import { DEFAULT_PRODUCE_TIMEOUT_MS, MAX_RECORD_BYTES, NDJSON_CONTENT_TYPE } from '../wire/types.js';
import { type CallOptions, sleep, untilAborted, withDeadline } from './call.js';
import { Consumer, type ConsumerOptions, type JsonConsumerOptions } from './consumer.js';
import { isRetriable, RaftlogError, RaftlogNetworkError, surelyNotApplied } from './errors.js';
import type {
  GroupDescription,
  GroupSummary,
  JoinGroupRequest,
  ListGroupsResponse,
  MembershipAnswer,
} from './group.js';
import { type HttpOptions, HttpTransport, type JsonAnswer, type RequestSpec } from './http.js';
import { partitionPath, topicPath } from './paths.js';
import { Producer, type ProducerOptions } from './producer.js';
import { type RetryOptions, type RetryPolicy, retryDelayMs, retryPolicy } from './retry.js';
import { type ReadFrom, Router, type TopicRoute } from './router.js';
import { type RecordStream, recordStream } from './stream.js';

export const DEFAULT_URL = 'http://127.0.0.1:9090';

export interface RaftlogOptions extends HttpOptions {
  /** Bootstrap nodes: any of them will do; the client learns the others. Default [DEFAULT_URL]. */
  urls?: string[];
  /** One bootstrap node (the same as `urls: [url]`). */
  url?: string;
  /**
   * Send every request to the given URLs (the first that answers) and learn nothing: the node
   * forwards what it must. For probes of one node, and for nodes behind one address.
   */
  direct?: boolean;
  /** Where fetches go: 'any' replica (default, spread over them), 'leader', or 'follower'. */
  readFrom?: ReadFrom;
  /** Leaders and nodes are asked again at least this often (default 300,000: Kafka's metadata.max.age.ms). */
  metadataMaxAgeMs?: number;
  /** A node that failed is skipped this long, unless every node is down (default 2000). */
  nodeDownMs?: number;
  /** Retries of reads and of requests whose retry is safe (defaults: 10 attempts, 30 s in all). */
  retry?: RetryOptions;
  /** Longest NDJSON line accepted from a stream (a record of 1 MiB, escaped). */
  streamLineBytesMax?: number;
}

/** @deprecated The old name of RaftlogOptions. */
export type RaftlogClientOptions = RaftlogOptions;

/** Options of a fetch: where it goes, on top of every call's signal and deadline. */
export interface FetchCallOptions extends CallOptions {
  readFrom?: ReadFrom;
}

/** A fenced commit names the member and its generation (docs/api.md); without, a plain one. */
export interface CommitOffsetsOptions extends CallOptions {
  memberId?: string;
  generation?: number;
}

/**
 * How one request is sent and retried: `idempotent` ones (reads, offset commits, heartbeats, a
 * produce with a producer sequence) after any retriable failure; `once` ones (topic creation, a
 * join, a produce without a producer) only when they surely changed nothing.
 * @internal
 */
export interface Execution {
  /** The node of each attempt (re-asked per attempt, after the route may have changed). */
  target: (attempt: number, signal: AbortSignal | undefined) => string | Promise<string>;
  safety: 'idempotent' | 'once';
  signal: AbortSignal | undefined;
  retry?: RetryPolicy;
  /** Told of each failure before the retry decision (to invalidate a route). */
  onFailure?: (error: unknown) => void;
}

const READ_RETRY_DEFAULTS: Partial<RetryPolicy> = { attemptsMax: 10, totalMsMax: 30_000 };

export class Raftlog {
  /** The bootstrap URLs, normalized. */
  readonly urls: readonly string[];
  readonly readFrom: ReadFrom;
  /** @internal */
  readonly router: Router;
  /** @internal */
  readonly http: HttpTransport;
  private readonly retry: RetryPolicy;
  private readonly streamLineBytesMax: number;
  private readonly routeLoads = new Map<string, Promise<TopicRoute>>();
  private clusterLoad: Promise<void> | undefined;

  constructor(options: RaftlogOptions = {}) {
    const urls = options.urls ?? (options.url === undefined ? [DEFAULT_URL] : [options.url]);
    this.router = new Router({
      urls,
      direct: options.direct ?? false,
      metadataMaxAgeMs: options.metadataMaxAgeMs ?? 300_000,
      nodeDownMs: options.nodeDownMs ?? 2_000,
    });
    this.urls = this.router.bootstrap;
    this.http = new HttpTransport(options);
    this.readFrom = options.readFrom ?? 'any';
    this.retry = retryPolicy(options.retry, READ_RETRY_DEFAULTS);
    // Escaping can grow a 1 MiB record up to 6 times (\u00XX); base64 by 4/3. Leave room for both.
    this.streamLineBytesMax = options.streamLineBytesMax ?? 8 * MAX_RECORD_BYTES;
  }

  /** The first bootstrap URL. */
  get url(): string {
    return this.urls[0]!;
  }

  // Topics.

  createTopic(request: CreateTopicRequest, options?: CallOptions): Promise<TopicDescription> {
    return this.anyNode(
      'once',
      'create topic',
      { method: 'POST', path: '/v1/topics', body: request },
      options,
    );
  }

  async listTopics(options?: CallOptions): Promise<TopicDescription[]> {
    const body = await this.anyNode<ListTopicsResponse>(
      'idempotent',
      'list topics',
      { method: 'GET', path: '/v1/topics' },
      options,
    );
    return body.topics;
  }

  async describeTopic(topic: string, options?: CallOptions): Promise<TopicDescription> {
    // The route learned here spares a later send its lookup, and with it the ask for the nodes:
    // ask now, or a client given one URL would know no other node when that one dies.
    this.refreshClusterIfDue();
    const description = await this.anyNode<TopicDescription>(
      'idempotent',
      'describe topic',
      { method: 'GET', path: topicPath(topic) },
      options,
    );
    this.router.learnTopic(description);
    return description;
  }

  async deleteTopic(topic: string, options?: CallOptions): Promise<void> {
    await this.anyNode('once', 'delete topic', { method: 'DELETE', path: topicPath(topic) }, options);
    this.router.forget(topic);
  }

  // Records.

  /**
   * One produce request as is (no batching), to the leader when every record names one
   * partition; retried only where safe (with `request.producer`: every retriable failure).
   * See Producer for batching and partitioning.
   */
  produce(topic: string, request: ProduceRequest, options?: CallOptions): Promise<ProduceResponse> {
    const partition = singlePartition(request);
    const spec: RequestSpec = {
      method: 'POST',
      path: `${topicPath(topic)}/records`,
      body: request,
      serverWaitMs: request.timeoutMs ?? DEFAULT_PRODUCE_TIMEOUT_MS,
    };
    return withDeadline(options, `produce to '${topic}'`, async (signal) => {
      spec.signal = signal;
      const answer = await this.execute<ProduceResponse>(spec, {
        target: (_attempt, attemptSignal) =>
          partition === undefined ? this.router.anyNode() : this.leaderUrl(topic, partition, attemptSignal),
        safety: request.producer ? 'idempotent' : 'once',
        signal,
        onFailure: (error) => this.onLeaderTrouble(topic, error),
      });
      if (partition !== undefined && answer.servedBy !== undefined) {
        this.router.learnLeader(topic, partition, answer.servedBy);
      }
      checkOffsets(topic, request.records.length, answer.body);
      return answer.body;
    });
  }

  /** Fetches from a replica of the partition (`readFrom`), moving to another one on failure. */
  async fetch(
    topic: string,
    partition: number,
    params: FetchParams = {},
    options: FetchCallOptions = {},
  ): Promise<FetchResponse> {
    const spec = {
      method: 'GET' as const,
      path: `${partitionPath(topic, partition)}/records`,
      query: { ...params },
      serverWaitMs: params.waitMs ?? 0,
    };
    return this.fromReplica<FetchResponse>(topic, partition, `fetch from '${topic}'`, spec, options);
  }

  /**
   * The first committed record of the partition whose timestamp is at or after `timestampMs`
   * (ms since the epoch): its offset and timestamp, or, when none is that late, the high
   * watermark and a null timestamp. Asked of a replica (`readFrom`), which answers from its copy.
   */
  async offsetForTime(
    topic: string,
    partition: number,
    timestampMs: number,
    options: FetchCallOptions = {},
  ): Promise<OffsetForTimeResponse> {
    const spec = {
      method: 'GET' as const,
      path: `${partitionPath(topic, partition)}/offsets`,
      query: { timestamp: timestampMs },
    };
    const what = `offset for a time in '${topic}'`;
    return this.fromReplica<OffsetForTimeResponse>(topic, partition, what, spec, options);
  }

  /** A read a replica of the partition answers (options.readFrom), retried at another one. */
  private fromReplica<T>(
    topic: string,
    partition: number,
    what: string,
    spec: Omit<RequestSpec, 'signal'>,
    options: FetchCallOptions,
  ): Promise<T> {
    const readFrom = options.readFrom ?? this.readFrom;
    return withDeadline(options, what, async (signal) => {
      const answer = await this.execute<T>(
        { ...spec, signal },
        {
          target: (attempt, attemptSignal) =>
            this.replicaUrl(topic, partition, readFrom, attempt, attemptSignal),
          safety: 'idempotent',
          signal,
          onFailure: (error) => this.onLeaderTrouble(topic, error),
        },
      );
      // A forwarded read: the node asked holds no replica; the route is out of date.
      if (answer.servedBy !== undefined) this.router.invalidate(topic);
      return answer.body;
    });
  }

  /**
   * Opens the NDJSON stream of one partition, or of every partition of the topic merged when
   * `partition` is undefined. Resolves once the server has accepted it (so a 404 is an error here,
   * not in the loop); the records come from iterating the result.
   */
  async openStream(
    topic: string,
    partition: number | undefined,
    params: StreamParams = {},
    options: CallOptions = {},
  ): Promise<RecordStream> {
    const path =
      partition === undefined ? `${topicPath(topic)}/stream` : `${partitionPath(topic, partition)}/stream`;
    const origin = this.router.anyNode();
    const response = await this.http.stream(origin, {
      method: 'GET',
      path,
      query: { ...params },
      headers: { accept: NDJSON_CONTENT_TYPE },
      signal: options.signal,
    });
    return recordStream(response, {
      partition,
      lineBytesMax: this.streamLineBytesMax,
      signal: options.signal,
      baseUrl: origin,
    });
  }

  // Consumer groups.

  /** Commits offsets; fenced by `memberId` and `generation` when given (409 STALE_GENERATION). */
  async commitOffsets(
    group: string,
    offsets: GroupOffset[],
    options: CommitOffsetsOptions = {},
  ): Promise<void> {
    const body: { offsets: GroupOffset[]; memberId?: string; generation?: number } = { offsets };
    if (options.memberId !== undefined) {
      body.memberId = options.memberId;
      body.generation = options.generation;
    }
    await this.anyNode(
      'idempotent',
      'commit offsets',
      { method: 'PUT', path: groupOffsetsPath(group), body },
      options,
    );
  }

  async groupOffsets(
    group: string,
    query: { topic?: string } = {},
    options?: CallOptions,
  ): Promise<GroupOffset[]> {
    const body = await this.anyNode<{ offsets: GroupOffset[] }>(
      'idempotent',
      'read group offsets',
      { method: 'GET', path: groupOffsetsPath(group), query: { topic: query.topic } },
      options,
    );
    return body.offsets;
  }

  /**
   * Joins `group` as a new member. Retried only when surely not applied: a join whose answer was
   * lost leaves a member nobody heartbeats, which expires after its sessionTimeoutMs.
   */
  joinGroup(group: string, request: JoinGroupRequest, options?: CallOptions): Promise<MembershipAnswer> {
    return this.anyNode(
      'once',
      `join group '${group}'`,
      { method: 'POST', path: `${groupPath(group)}/members`, body: request },
      options,
    );
  }

  heartbeat(
    group: string,
    memberId: string,
    generation: number,
    options?: CallOptions,
  ): Promise<MembershipAnswer> {
    return this.anyNode(
      'idempotent',
      `heartbeat to group '${group}'`,
      { method: 'POST', path: `${memberPath(group, memberId)}/heartbeat`, body: { generation } },
      options,
    );
  }

  async leaveGroup(group: string, memberId: string, options?: CallOptions): Promise<void> {
    await this.anyNode(
      'idempotent',
      `leave group '${group}'`,
      { method: 'DELETE', path: memberPath(group, memberId) },
      options,
    );
  }

  describeGroup(group: string, options?: CallOptions): Promise<GroupDescription> {
    return this.anyNode('idempotent', 'describe group', { method: 'GET', path: groupPath(group) }, options);
  }

  async listGroups(options?: CallOptions): Promise<GroupSummary[]> {
    const body = await this.anyNode<ListGroupsResponse>(
      'idempotent',
      'list groups',
      { method: 'GET', path: '/v1/groups' },
      options,
    );
    return body.groups;
  }

  // Cluster and operations.

  async cluster(options?: CallOptions): Promise<ClusterResponse> {
    const cluster = await this.anyNode<ClusterResponse>(
      'idempotent',
      'read the cluster',
      { method: 'GET', path: '/v1/cluster' },
      options,
    );
    this.router.learnCluster(cluster);
    return cluster;
  }

  /** Asks `node` to lead the partition; resolves once it does. */
  async transferLeader(topic: string, partition: number, node: number, options?: CallOptions): Promise<void> {
    const body: TransferLeaderRequest = { node };
    await this.anyNode(
      'idempotent',
      'transfer leadership',
      { method: 'POST', path: `${partitionPath(topic, partition)}/leader`, body },
      options,
    );
    this.router.invalidate(topic);
  }

  /** True when the first bootstrap node serves (`/healthz`); false when it answers otherwise or not at all. */
  isHealthy(options: CallOptions = {}): Promise<boolean> {
    return this.probe('/healthz', options);
  }

  /** True when the first bootstrap node has caught up and knows every local partition's leader (`/readyz`). */
  isReady(options: CallOptions = {}): Promise<boolean> {
    return this.probe('/readyz', options);
  }

  // Higher-level clients sharing this pool.

  /**
   * A batching producer; idempotent unless `idempotent: false`. With `json: true` values are any
   * JSON value. Close it before the client.
   */
  producer<T = unknown>(options: ProducerOptions & { json: true }): Producer<T>;
  producer(options?: ProducerOptions): Producer;
  producer(options: ProducerOptions = {}): Producer<unknown> {
    return new Producer<unknown>(this, options);
  }

  /** A consumer of one topic: alone, or in a group with `group`. Close it before the client. */
  consumer<T = unknown>(options: JsonConsumerOptions): Consumer<T>;
  consumer(options: ConsumerOptions & { binary: true }): Consumer<Uint8Array>;
  consumer(options: ConsumerOptions): Consumer<string>;
  consumer(options: ConsumerOptions): Consumer<unknown> {
    return new Consumer(this, options);
  }

  /** Closes the pools (unless a dispatcher was injected); requests in flight fail. */
  close(): Promise<void> {
    return this.http.close();
  }

  // Routing (used by Producer and Consumer).

  /** The topic's partitions and leaders: cached, asked again after a change or metadataMaxAgeMs. @internal */
  async topicRoute(topic: string, signal?: AbortSignal): Promise<TopicRoute> {
    const known = this.router.route(topic);
    if (known) return known;
    let load = this.routeLoads.get(topic);
    if (!load) {
      load = this.loadRoute(topic).finally(() => this.routeLoads.delete(topic));
      this.routeLoads.set(topic, load);
    }
    return untilAborted(load, signal);
  }

  /**
   * Where a produce to the partition goes now: at once while the route is known (the hot path of
   * every produce allocates no promise here), else once the route is loaded. @internal
   */
  leaderUrl(topic: string, partition: number, signal?: AbortSignal): string | Promise<string> {
    if (this.router.direct) return this.router.anyNode();
    const known = this.router.route(topic);
    if (known) return this.router.leaderUrl(known, partition);
    return this.topicRoute(topic, signal).then((route) => this.router.leaderUrl(route, partition));
  }

  /** @internal */
  async replicaUrl(
    topic: string,
    partition: number,
    readFrom: ReadFrom,
    attempt: number,
    signal?: AbortSignal,
  ): Promise<string> {
    if (this.router.direct) return this.router.anyNode();
    const route = await this.topicRoute(topic, signal);
    return this.router.replicaUrl(route, partition, readFrom, attempt);
  }

  /** A failure that says the leader moved or a node died: ask for the route again. @internal */
  onLeaderTrouble(topic: string, error: unknown): void {
    if (error instanceof RaftlogNetworkError) {
      this.router.invalidate(topic);
      return;
    }
    if (!(error instanceof RaftlogError)) return;
    const code = error.code;
    if (code === 'NO_LEADER' || code === 'NOT_ENOUGH_REPLICAS' || code === 'BUSY' || code === 'TIMEOUT') {
      this.router.invalidate(topic);
    }
    if (code === 'UNKNOWN_TOPIC' || code === 'UNKNOWN_PARTITION') this.router.forget(topic);
  }

  /**
   * Sends one request, retrying per `how`: a node that cannot be reached is marked down and the
   * next attempt goes elsewhere at once; a refusal waits (retry-after, else exponential backoff
   * with jitter). Bounded by the retry policy's attempts and total time, and by the signal.
   * @internal
   */
  async execute<T>(spec: RequestSpec, how: Execution): Promise<JsonAnswer<T>> {
    const policy = how.retry ?? this.retry;
    const startedMs = Date.now();
    for (let attempt = 1; ; attempt++) {
      let origin: string | undefined;
      try {
        const target = how.target(attempt, how.signal);
        origin = typeof target === 'string' ? target : await target;
        const answer = await this.http.request<T>(origin, spec);
        this.router.answered(origin, answer.nodeId);
        return answer;
      } catch (error) {
        how.signal?.throwIfAborted();
        const unreachable = error instanceof RaftlogNetworkError;
        let retriable: boolean;
        if (origin === undefined) {
          // The target lookup failed (a route load that ran out of the client's own retries, as
          // while a dead node's partitions elect): this attempt sent nothing, so a transient
          // failure is retried within this request's budget whatever its safety.
          retriable = isRetriable(error);
        } else {
          if (unreachable) this.router.failed(origin);
          else if (error instanceof RaftlogError && error.statusCode !== 0) {
            this.router.answered(origin, error.nodeId);
            // A node without a leader to serve from may stay so (a minority side): ask another.
            if (error.code === 'NO_LEADER') this.router.passOver(origin);
          }
          how.onFailure?.(error);
          retriable = how.safety === 'idempotent' ? isRetriable(error) : surelyNotApplied(error);
        }
        if (!retriable || attempt >= policy.attemptsMax) throw error;
        const retryAfterMs = error instanceof RaftlogError ? error.retryAfterMs : undefined;
        // Another node may be up: try it at once; then back off.
        const delayMs = unreachable && attempt === 1 ? 0 : retryDelayMs(policy, attempt, retryAfterMs);
        if (Date.now() - startedMs + delayMs > policy.totalMsMax) throw error;
        if (delayMs > 0) await sleep(delayMs, how.signal);
      }
    }
  }

  /** A request any node serves, with the client's retry policy. */
  private anyNode<T>(
    safety: Execution['safety'],
    what: string,
    spec: RequestSpec,
    options: CallOptions | undefined,
  ): Promise<T> {
    return withDeadline(options, what, async (signal) => {
      const answer = await this.execute<T>(
        { ...spec, signal },
        { target: () => this.router.anyNode(), safety, signal },
      );
      return answer.body;
    });
  }

  /**
   * Asks for the topic, and for the nodes when due (first use, a node failed, metadataMaxAgeMs):
   * both at once, and the route is used once both are in.
   */
  private async loadRoute(topic: string): Promise<TopicRoute> {
    this.refreshClusterIfDue();
    const [description] = await Promise.all([this.describeTopic(topic), this.clusterLoad]);
    return this.router.learnTopic(description);
  }

  /** Asks for the cluster's nodes when due; a failure leaves what we know (bootstrap URLs work). */
  private refreshClusterIfDue(): void {
    if (this.clusterLoad || !this.router.clusterDue()) return;
    this.router.clusterAsked();
    this.clusterLoad = this.cluster({ timeoutMs: this.http.requestTimeoutMs })
      .then(
        () => undefined,
        () => undefined, // A node without the route, or none reachable: bootstrap URLs still work.
      )
      .finally(() => {
        this.clusterLoad = undefined;
      });
  }

  private async probe(path: string, options: CallOptions): Promise<boolean> {
    try {
      await withDeadline(options, `probe ${path}`, (signal) =>
        this.http.request<unknown>(this.urls[0]!, {
          method: 'GET',
          path,
          signal,
          headers: { accept: '*/*' },
        }),
      );
      return true;
    } catch (error) {
      options.signal?.throwIfAborted();
      // A 200 with a non-JSON body still means "serving".
      return (
        error instanceof RaftlogError && error.code === 'UNEXPECTED_RESPONSE' && error.statusCode === 200
      );
    }
  }
}

/** The old name of Raftlog (the CLI's), kept for existing callers. */
export { Raftlog as RaftlogClient };

/** The one partition every record names, or undefined (the server then splits the request). */
function singlePartition(request: ProduceRequest): number | undefined {
  const first = request.records[0]?.partition;
  if (first === undefined) return undefined;
  for (const record of request.records) if (record.partition !== first) return undefined;
  return first;
}

function checkOffsets(topic: string, records: number, response: ProduceResponse | undefined): void {
  if (!Array.isArray(response?.offsets) || response.offsets.length !== records) {
    throw new RaftlogError(
      'UNEXPECTED_RESPONSE',
      `produce to '${topic}' answered ${response?.offsets?.length ?? 'no'} offsets for ${records} records`,
    );
  }
}

function groupPath(group: string): string {
  return `/v1/groups/${encodeURIComponent(group)}`;
}

function groupOffsetsPath(group: string): string {
  return `${groupPath(group)}/offsets`;
}

function memberPath(group: string, memberId: string): string {
  return `${groupPath(group)}/members/${encodeURIComponent(memberId)}`;
}
