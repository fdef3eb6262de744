// RaftlogClient: one method per route of the client contract (../shared/API.md), over one
// connection pool to one node (any node serves every route). Producer and Consumer are built on
// it and share its pool.

import type {
  ClusterResponse,
  CreateTopicRequest,
  FetchParams,
  FetchResponse,
  GroupOffset,
  GroupOffsetsBody,
  ListTopicsResponse,
  ProduceRequest,
  ProduceResponse,
  StreamParams,
  TopicDescription,
  TransferLeaderRequest,
} from '../wire/types.js';
import { DEFAULT_PRODUCE_TIMEOUT_MS, MAX_RECORD_BYTES, NDJSON_CONTENT_TYPE } from '../wire/types.js';
import { Consumer, type ConsumerOptions } from './consumer.js';
import { RaftlogError } from './errors.js';
import { HttpConnection, type HttpOptions } from './http.js';
import { Producer, type ProducerOptions } from './producer.js';
import { type RecordStream, recordStream } from './stream.js';

export const DEFAULT_URL = 'http://127.0.0.1:9090';

export interface RaftlogClientOptions extends Omit<HttpOptions, 'baseUrl'> {
  /** Any node of the cluster. Default http://127.0.0.1:9090. */
  url?: string;
  /** Longest NDJSON line accepted from a stream (a record of 1 MiB, escaped). */
  streamLineBytesMax?: number;
}

/** Options of every call. */
export interface CallOptions {
  signal?: AbortSignal;
}

export class RaftlogClient {
  readonly url: string;
  private readonly http: HttpConnection;
  private readonly streamLineBytesMax: number;

  constructor(options: RaftlogClientOptions = {}) {
    this.http = new HttpConnection({ ...options, baseUrl: options.url ?? DEFAULT_URL });
    this.url = this.http.baseUrl;
    // Escaping can grow a 1 MiB record up to 6 times (\u00XX); base64 by 4/3. Leave room for both.
    this.streamLineBytesMax = options.streamLineBytesMax ?? 8 * MAX_RECORD_BYTES;
  }

  // Topics.

  createTopic(request: CreateTopicRequest, options: CallOptions = {}): Promise<TopicDescription> {
    return this.http.json({ method: 'POST', path: '/v1/topics', body: request, signal: options.signal });
  }

  async listTopics(options: CallOptions = {}): Promise<TopicDescription[]> {
    const body = await this.http.json<ListTopicsResponse>({
      method: 'GET',
      path: '/v1/topics',
      signal: options.signal,
    });
    return body.topics;
  }

  describeTopic(topic: string, options: CallOptions = {}): Promise<TopicDescription> {
    return this.http.json({ method: 'GET', path: topicPath(topic), signal: options.signal });
  }

  deleteTopic(topic: string, options: CallOptions = {}): Promise<void> {
    return this.http.json({ method: 'DELETE', path: topicPath(topic), signal: options.signal });
  }

  // Records.

  /** One produce request as is (no batching, no retry): see Producer for those. */
  async produce(topic: string, request: ProduceRequest, options: CallOptions = {}): Promise<ProduceResponse> {
    const response = await this.http.json<ProduceResponse>({
      method: 'POST',
      path: `${topicPath(topic)}/records`,
      body: request,
      signal: options.signal,
      serverWaitMs: request.timeoutMs ?? DEFAULT_PRODUCE_TIMEOUT_MS,
    });
    if (!Array.isArray(response?.offsets) || response.offsets.length !== request.records.length) {
      throw new RaftlogError(
        'UNEXPECTED_RESPONSE',
        `produce to '${topic}' answered ${response?.offsets?.length ?? 'no'} offsets for ${request.records.length} records`,
      );
    }
    return response;
  }

  fetch(
    topic: string,
    partition: number,
    params: FetchParams = {},
    options: CallOptions = {},
  ): Promise<FetchResponse> {
    return this.http.json({
      method: 'GET',
      path: `${partitionPath(topic, partition)}/records`,
      query: { ...params },
      signal: options.signal,
      serverWaitMs: params.waitMs ?? 0,
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
    const response = await this.http.stream({
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
      baseUrl: this.url,
    });
  }

  // Consumer groups.

  commitOffsets(group: string, offsets: GroupOffset[], options: CallOptions = {}): Promise<void> {
    const body: GroupOffsetsBody = { offsets };
    return this.http.json({ method: 'PUT', path: groupOffsetsPath(group), body, signal: options.signal });
  }

  async groupOffsets(
    group: string,
    query: { topic?: string } = {},
    options: CallOptions = {},
  ): Promise<GroupOffset[]> {
    const body = await this.http.json<GroupOffsetsBody>({
      method: 'GET',
      path: groupOffsetsPath(group),
      query: { topic: query.topic },
      signal: options.signal,
    });
    return body.offsets;
  }

  // Cluster and operations.

  cluster(options: CallOptions = {}): Promise<ClusterResponse> {
    return this.http.json({ method: 'GET', path: '/v1/cluster', signal: options.signal });
  }

  /** Asks `node` to lead the partition; resolves once it does. */
  async transferLeader(
    topic: string,
    partition: number,
    node: number,
    options: CallOptions = {},
  ): Promise<void> {
    const body: TransferLeaderRequest = { node };
    await this.http.json<unknown>({
      method: 'POST',
      path: `${partitionPath(topic, partition)}/leader`,
      body,
      signal: options.signal,
    });
  }

  /** True when the node serves (`/healthz`); false when it answers otherwise or not at all. */
  isHealthy(options: CallOptions = {}): Promise<boolean> {
    return this.probe('/healthz', options);
  }

  /** True when the node has caught up and knows every local partition's leader (`/readyz`). */
  isReady(options: CallOptions = {}): Promise<boolean> {
    return this.probe('/readyz', options);
  }

  // Higher-level clients sharing this pool.

  producer(options: ProducerOptions = {}): Producer {
    return new Producer(this, options);
  }

  consumer(options: ConsumerOptions): Consumer {
    return new Consumer(this, options);
  }

  /** Closes the pool (unless a dispatcher was injected); in-flight requests fail. */
  close(): Promise<void> {
    return this.http.close();
  }

  private async probe(path: string, options: CallOptions): Promise<boolean> {
    try {
      await this.http.json<unknown>({
        method: 'GET',
        path,
        signal: options.signal,
        headers: { accept: '*/*' },
      });
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

function topicPath(topic: string): string {
  return `/v1/topics/${encodeURIComponent(topic)}`;
}

function partitionPath(topic: string, partition: number): string {
  return `${topicPath(topic)}/partitions/${partition}`;
}

function groupOffsetsPath(group: string): string {
  return `/v1/groups/${encodeURIComponent(group)}/offsets`;
}
