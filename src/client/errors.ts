// The SDK's errors: one class per kind of failure, each carrying a stable `code`. Server errors
// keep the contract's code (src/wire/errors.ts); failures that never got an answer from a server
// have codes of their own, so callers can branch on `code` alone.

import type { ErrorCode } from '../wire/errors.js';

/** Codes the SDK raises itself, when no contract error came back. */
export type ClientErrorCode =
  /** The server could not be reached, or the connection broke before a full answer. */
  | 'NETWORK_ERROR'
  /** An answer that is not the contract's (a proxy's HTML page, a truncated or oversized body). */
  | 'UNEXPECTED_RESPONSE'
  /** The producer holds `bufferBytesMax` of unsent records already. */
  | 'BUFFER_FULL'
  /** An idempotent producer lost track of a partition's sequence (see Producer). */
  | 'PRODUCER_SEQUENCE_UNKNOWN'
  /** The producer or consumer was closed. */
  | 'CLOSED'
  /** A consumer with `json: true` met a value that is not JSON (details: topic, partition, offset). */
  | 'INVALID_JSON';

/**
 * The codes of group membership (docs/api.md; also in ErrorCode), for callers that branch on
 * them: a member that no longer exists (expired or left: join again), and a fenced commit of an
 * old generation or of a partition the member does not own.
 */
export type GroupErrorCode = 'UNKNOWN_MEMBER' | 'STALE_GENERATION';

export type RaftlogErrorCode = ErrorCode | GroupErrorCode | ClientErrorCode;

export interface RaftlogErrorOptions {
  statusCode?: number;
  /** Extra fields of the error body (e.g. `logStartOffset` and `highWatermark` of a 416). */
  details?: Record<string, unknown>;
  retryAfterMs?: number;
  /** The node that answered (`x-raftlog-node`), when known. */
  nodeId?: number;
  cause?: unknown;
}

/** An error with a stable code: a contract error from a server, or one of the client's own. */
export class RaftlogError extends Error {
  override readonly name: string = 'RaftlogError';
  readonly code: RaftlogErrorCode | (string & {});
  /** HTTP status of the answer; 0 when there was none. */
  readonly statusCode: number;
  readonly details: Record<string, unknown>;
  /** From `retry-after` (503): how long the server asks us to wait before retrying. */
  readonly retryAfterMs: number | undefined;
  readonly nodeId: number | undefined;

  constructor(code: RaftlogErrorCode | (string & {}), message: string, options: RaftlogErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = options.statusCode ?? 0;
    this.details = options.details ?? {};
    this.retryAfterMs = options.retryAfterMs;
    this.nodeId = options.nodeId;
  }
}

/** Why a request got no answer, in words a user reads in one line. */
export type NetworkFailure =
  | 'connection refused'
  | 'host not found'
  | 'connect timeout'
  | 'response timeout'
  | 'connection reset'
  | 'network error';

/** The server could not be reached or the connection failed mid-request. */
export class RaftlogNetworkError extends RaftlogError {
  override readonly name: string = 'RaftlogNetworkError';
  /** Base URL of the server that was being called. */
  readonly url: string;
  readonly failure: NetworkFailure;
  /**
   * True when the request surely never reached the server (refused, unresolvable, connect
   * timeout), so even a non-idempotent retry cannot duplicate it.
   */
  readonly notSent: boolean;

  constructor(url: string, failure: NetworkFailure, cause: unknown) {
    super('NETWORK_ERROR', `cannot reach ${url} (${failure})`, { cause });
    this.url = url;
    this.failure = failure;
    this.notSent =
      failure === 'connection refused' || failure === 'host not found' || failure === 'connect timeout';
  }
}

/**
 * Refused before anything was appended: no leader or quorum (503), a node too busy or shutting
 * down (503 BUSY), a leader's full budget (429 THROTTLED). Retrying them can never duplicate.
 */
const NOT_APPLIED_CODES: ReadonlySet<string> = new Set([
  'NO_LEADER',
  'NOT_ENOUGH_REPLICAS',
  'BUSY',
  'THROTTLED',
  'NOT_READY',
]);

/**
 * Whether retrying the same request can succeed. A 504 TIMEOUT or a broken connection leave the
 * outcome unknown: retrying them is only safe for idempotent requests (a produce with the same
 * producer sequence, a read, an offset commit, a heartbeat).
 */
export function isRetriable(error: unknown): boolean {
  if (error instanceof RaftlogNetworkError) return true;
  return (
    error instanceof RaftlogError &&
    error.statusCode !== 0 &&
    (NOT_APPLIED_CODES.has(error.code) || error.code === 'TIMEOUT')
  );
}

/** Whether a failed write surely changed nothing, so even a non-idempotent retry is safe. */
export function surelyNotApplied(error: unknown): boolean {
  if (error instanceof RaftlogNetworkError) return error.notSent;
  return error instanceof RaftlogError && error.statusCode !== 0 && NOT_APPLIED_CODES.has(error.code);
}

/** The error of a call whose own deadline (`timeoutMs`) passed: like a 504, the outcome is unknown. */
export function deadlineError(timeoutMs: number, what: string): RaftlogError {
  return new RaftlogError('TIMEOUT', `${what}: no outcome within ${timeoutMs} ms (timeoutMs)`);
}
