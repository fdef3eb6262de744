// The raftlog SDK: RaftlogClient (every route of the contract), Producer (batching, retries,
// idempotence), Consumer (fetch loops, group offsets), record streams, and coded errors.

export { LineTooLongError, splitLines } from '../wire/lines.js';
export { murmur2, partitionForKey } from '../wire/partitioner.js';
export type * from '../wire/types.js';
export { type CallOptions, DEFAULT_URL, RaftlogClient, type RaftlogClientOptions } from './client.js';
export {
  type ConsumedRecord,
  Consumer,
  type ConsumerOptions,
  type ReadOptions,
  type StartOffset,
} from './consumer.js';
export {
  type ClientErrorCode,
  isRetriable,
  type NetworkFailure,
  RaftlogError,
  type RaftlogErrorCode,
  RaftlogNetworkError,
  surelyNotApplied,
} from './errors.js';
export { normalizeBaseUrl, parseRetryAfterMs } from './http.js';
export {
  type IdempotenceOptions,
  PRODUCER_DEFAULTS,
  Producer,
  type ProducerOptions,
  type RecordMetadata,
} from './producer.js';
export type { RetryOptions } from './retry.js';
export type { RecordStream, StreamedRecord } from './stream.js';
