// Named errors of the transport. An expected operating condition (a malformed frame from a peer, a
// refused handshake, a bad config) is a TransportError with a stable code; a broken invariant of
// this process (a caller passing an unencodable message) is the Raft core's AssertionError.

import { AssertionError } from '../raft/index.js';

export type TransportErrorCode =
  /** A frame's bytes do not parse: bad kind, bad field, or lengths that do not add up. */
  | 'MalformedFrame'
  /** A frame's length prefix is zero or above `maxFrameBytes`. */
  | 'FrameTooLarge'
  /** The peer answered the upgrade request with something other than our 101. */
  | 'HandshakeRejected'
  /** A limit or option passed to the Transport is out of range. */
  | 'InvalidConfig';

export class TransportError extends Error {
  readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string) {
    super(message);
    this.name = 'TransportError';
    this.code = code;
  }
}

export function isTransportError(error: unknown, code?: TransportErrorCode): error is TransportError {
  return error instanceof TransportError && (code === undefined || error.code === code);
}

/** Asserts what must hold; a failure is a bug in this process, never a peer's fault. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
