// Typed, coded errors of the storage layer: expected operating conditions the broker handles
// (a corrupt log to rebuild from peers, a closed engine). Broken invariants use raft's assert.

export type StorageErrorCode =
  /** A frame before the tail of a log failed its checks; `file` and `offsetBytes` say where. */
  | 'CorruptLog'
  /** A read from disk found a frame that fails its CRC (bit rot after open). */
  | 'CorruptRead'
  /** The engine or the log is closed (or dropped). */
  | 'Closed'
  /** openLog for a group that is already open in this engine. */
  | 'AlreadyOpen'
  /** A write or read failed in the file system (disk full, I/O error); the log stops taking writes. */
  | 'IoFailed'
  /** An argument outside its documented range. */
  | 'InvalidArgument';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  /** The file concerned, when there is one. */
  readonly file: string | null;
  /** Byte offset in `file` where the problem starts, when known. */
  readonly offsetBytes: number | null;

  constructor(
    code: StorageErrorCode,
    message: string,
    location: { file?: string; offsetBytes?: number; cause?: unknown } = {},
  ) {
    super(message, location.cause === undefined ? undefined : { cause: location.cause });
    this.name = 'StorageError';
    this.code = code;
    this.file = location.file ?? null;
    this.offsetBytes = location.offsetBytes ?? null;
  }
}

export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}
