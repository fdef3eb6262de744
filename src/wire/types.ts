// The JSON shapes of the HTTP contract (docs/api.md), shared by the API routes, the SDK and
// the CLI. Only types and constants: nothing here runs.

export type PersistenceMode = 'sync' | 'async' | 'memory';
export type Encoding = 'utf8' | 'base64';
export type Consistency = 'local' | 'linearizable';

export interface TopicConfigWire {
  persistence: PersistenceMode;
  retentionMs: number;
  retentionBytes: number;
}

export interface CreateTopicRequest {
  name: string;
  partitions?: number;
  replicationFactor?: number;
  config?: Partial<TopicConfigWire>;
}

export interface PartitionDescription {
  partition: number;
  /** Node id of the leader, or null when none is known. */
  leader: number | null;
  term: number;
  replicas: number[];
  logStartOffset: number;
  highWatermark: number;
}

export interface TopicDescription {
  name: string;
  config: TopicConfigWire;
  partitions: PartitionDescription[];
}

export interface ListTopicsResponse {
  topics: TopicDescription[];
}

export interface ProduceRecord {
  key?: string | null;
  value: string;
  headers?: Record<string, string | null> | null;
  partition?: number;
  timestamp?: number;
}

export interface ProducerIdentity {
  id: string;
  epoch: number;
  sequence: number;
}

export interface ProduceRequest {
  records: ProduceRecord[];
  encoding?: Encoding;
  producer?: ProducerIdentity;
  timeoutMs?: number;
}

export interface ProducedOffset {
  partition: number;
  offset: number;
}

export interface ProduceResponse {
  /** One per record of the request, in the order of `records`. */
  offsets: ProducedOffset[];
  duplicate: boolean;
}

export interface FetchedRecord {
  offset: number;
  key?: string | null;
  value: string;
  headers?: Record<string, string | null> | null;
  timestamp: number;
  /** Present in streams, where records of many partitions are merged. */
  partition?: number;
}

/**
 * `GET /v1/topics/{topic}/partitions/{p}/offsets?timestamp=MS`: the first committed record whose
 * timestamp is >= MS and its timestamp, or, when none is, the high watermark and null.
 */
export interface OffsetForTimeResponse {
  offset: number;
  timestamp: number | null;
}

export interface FetchResponse {
  records: FetchedRecord[];
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

export interface FetchParams {
  offset?: number | 'earliest' | 'latest';
  limit?: number;
  maxBytes?: number;
  waitMs?: number;
  encoding?: Encoding;
  consistency?: Consistency;
  minOffset?: number;
}

/** Query of the stream routes (per partition, or all partitions of a topic merged). */
export interface StreamParams {
  offset?: number | 'earliest' | 'latest';
  encoding?: Encoding;
}

export const NDJSON_CONTENT_TYPE = 'application/x-ndjson';

export interface TransferLeaderRequest {
  /** Id of the node that should lead the partition. */
  node: number;
}

export interface GroupOffset {
  topic: string;
  partition: number;
  offset: number;
}

export interface GroupOffsetsBody {
  offsets: GroupOffset[];
}

export interface ClusterNode {
  id: number;
  url: string;
  alive: boolean;
}

export interface ClusterResponse {
  clusterId: string;
  nodes: ClusterNode[];
  metadataLeader: number | null;
}

export interface ErrorBody {
  error: { code: string; message: string; [extra: string]: unknown };
}

/** Limits of the contract. */
export const MAX_RECORD_BYTES = 1024 * 1024;
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
export const FETCH_LIMIT_MAX = 10_000;
export const DEFAULT_FETCH_LIMIT = 1000;
export const DEFAULT_FETCH_MAX_BYTES = 1024 * 1024;
export const DEFAULT_PRODUCE_TIMEOUT_MS = 30_000;
export const NODE_HEADER = 'x-raftlog-node';
