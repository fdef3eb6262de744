// The public surface of the storage layer.

export { StorageEngine } from './engine.js';
export type { StorageEngineOptions } from './engine-options.js';
export { isStorageError, StorageError, type StorageErrorCode } from './errors.js';
export type { SyncFileSystem } from './file-system.js';
export { nodeFileSystem } from './file-system.js';
export type { DescribeEntry, RecordRange } from './frame.js';
export type { IoExecutorStats } from './io-executor.js';
export type { KeyValueArea } from './kv.js';
export type { SegmentSummary } from './log-files.js';
export {
  MEMORY_CHUNK_BYTES_MAX_DEFAULT,
  MEMORY_ENTRY_BOOKKEEPING_BYTES,
  type MemoryAppendPlan,
} from './memory-chunks.js';
export {
  type LogWrite,
  PartitionLog,
  type PartitionLogOptions,
  type PersistenceMode,
} from './partition-log.js';
