// Named errors of the Raft core. Expected operating conditions are RaftErrors with a stable code;
// a broken invariant is an AssertionError that should crash the process.

export type RaftErrorCode =
  /** The requested index is below the log start: it was truncated (compacted). */
  | 'Compacted'
  /** The requested index is above the last index. */
  | 'Unavailable'
  /** The range is in storage but not in memory; storage is loading it. Retry when notified. */
  | 'EntriesPending'
  /** The snapshot is being prepared; retry later. */
  | 'SnapshotTemporarilyUnavailable'
  /** A proposal reached a node that is not the leader. */
  | 'NotLeader'
  /** The leader refused a proposal: it is transferring leadership. */
  | 'ProposalDropped'
  /** The leader refused a proposal: it would take uncommitted entries over maxUncommittedBytes. */
  | 'UncommittedBytesFull'
  /** A membership change while another is still pending, or an invalid one. */
  | 'ConfChangeRejected';

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, message: string) {
    super(message);
    this.name = 'RaftError';
    this.code = code;
  }
}

export function isRaftError(error: unknown, code?: RaftErrorCode): error is RaftError {
  return error instanceof RaftError && (code === undefined || error.code === code);
}

export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

/** Asserts what must hold; a failure is a bug or corruption, never an operating condition. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
