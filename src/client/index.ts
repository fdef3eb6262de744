// The raftlog SDK, the package's main entry (`import { Raftlog } from 'raftlog'`): the client
// (every route of the contract, routed to leaders and replicas), Producer (partitioning, batching,
// idempotent retries), Consumer (alone or in a group, commits what the application finished),
// record streams, and coded errors. It loads no server code (test/client/layering.test.ts).

export { LineTooLongError, splitLines } from '../wire/lines.js';
export { murmur2, partitionForKey } from '../wire/partitioner.js';
export type * from '../wire/types.js';
export type { CallOptions } from './call.js';
export {
  type CommitOffsetsOptions,
  DEFAULT_URL,
  type FetchCallOptions,
  Raftlog,
  RaftlogClient,
  type RaftlogClientOptions,
  type RaftlogOptions,
} from './client.js';
export {
  type ConsumedBatch,
  type ConsumedRecord,
  Consumer,
  type ConsumerOptions,
  type JsonConsumerOptions,
  type ReadOptions,
  type RevokeReason,
  type StartOffset,
  type TopicPartition,
} from './consumer.js';
export {
  type ClientErrorCode,
  type GroupErrorCode,
  isRetriable,
  type NetworkFailure,
  RaftlogError,
  type RaftlogErrorCode,
  RaftlogNetworkError,
  surelyNotApplied,
} from './errors.js';
export type {
  Assignment,
  GroupDescription,
  GroupMemberDescription,
  GroupOffsetLag,
  GroupSummary,
  JoinGroupRequest,
  MembershipAnswer,
} from './group.js';
export { normalizeBaseUrl, parseRetryAfterMs } from './http.js';
export {
  type IdempotenceOptions,
  PRODUCER_DEFAULTS,
  Producer,
  type ProducerOptions,
  type ProducerRecord,
  type RecordMetadata,
} from './producer.js';
export type { RetryOptions } from './retry.js';
export type { ReadFrom } from './router.js';
export type { RecordStream, StreamedRecord } from './stream.js';
