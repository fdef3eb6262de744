// The public surface of the Raft core.

export {
  applyConfChange,
  type ConfChange,
  ConfChangeType,
  decodeConfChange,
  encodeConfChange,
} from './conf-change.js';
export { DEFAULT_RAFT_CONFIG, type RaftConfig } from './config.js';
export { AssertionError, isRaftError, RaftError, type RaftErrorCode } from './errors.js';
export { quorumSize } from './quorum.js';
export { type RandomSource, SeededRandom } from './random.js';
export { type ProgressStatus, RawNode, type RawNodeOptions, type Status } from './raw-node.js';
export { emptySnapshot, type InitialState, type LogStorage, limitBytes, MemoryStorage } from './storage.js';
export * from './types.js';
