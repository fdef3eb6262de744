// The bounds on receiving one HTTP request, each with its unit in its name, and how they map onto
// Node's http.Server. They cover receiving the request, never the answer: a long-poll (`waitMs`)
// and a stream (NDJSON/SSE) keep their own bounds. docs/operations.md "Limits and timeouts" lists them.

import type { ServerOptions } from 'node:http';
import { MAX_REQUEST_BYTES } from '../wire/types.js';

export interface HttpLimits {
  /**
   * From a connection's first byte (or its opening, when nothing comes) to the end of the
   * request's headers. Node's headersTimeout; past it: 408 REQUEST_TIMEOUT, connection closed.
   */
  readonly headersTimeoutMs: number;
  /**
   * A request body that delivers no byte for this long is cut: 408 REQUEST_TIMEOUT, connection
   * closed. Ours (a watchdog on the body stream), not Node's: Node's socket timeout also fires
   * on a quiet long-poll, which must not be cut.
   */
  readonly bodyIdleTimeoutMs: number;
  /**
   * The whole request, headers and body, must arrive within this, however steadily it trickles.
   * Node's requestTimeout; past it: 408 REQUEST_TIMEOUT, connection closed.
   */
  readonly requestTimeoutMs: number;
  /**
   * A keep-alive connection with no request in progress is closed after this (Node adds 1 s to
   * the value it advertises in `keep-alive: timeout=`). Node's keepAliveTimeout.
   */
  readonly keepAliveIdleTimeoutMs: number;
  /** How often Node checks headersTimeoutMs and requestTimeoutMs: a cut comes at most this late. */
  readonly timeoutCheckIntervalMs: number;
  /**
   * The request head: request line and headers together, as Node's parser counts it (Node's
   * maxHeaderSize). Past it: 431 HEADERS_TOO_LARGE, even when the URL made it long.
   */
  readonly headBytesMax: number;
  /** The request target (path and query string). Past it: 414 URI_TOO_LONG. */
  readonly urlBytesMax: number;
  /** The body (the contract's maxRequestBytes). Past it: 413 REQUEST_TOO_LARGE, unread when declared. */
  readonly requestBytesMax: number;
}

export const HTTP_LIMITS: HttpLimits = Object.freeze({
  // Headers are a few KiB: ten seconds is slow even for a bad mobile link (Node's default is 60 s).
  headersTimeoutMs: 10_000,
  bodyIdleTimeoutMs: 10_000,
  // A full 16 MiB body within 60 s needs about 280 KiB/s.
  requestTimeoutMs: 60_000,
  // Longer than the 60 s idle timeout of common load balancers, so that they close first and
  // never send a request on a connection this node is closing (fastify's default, for that reason).
  keepAliveIdleTimeoutMs: 72_000,
  timeoutCheckIntervalMs: 1_000,
  headBytesMax: 16_384,
  urlBytesMax: 8_192,
  requestBytesMax: MAX_REQUEST_BYTES,
});

/** HTTP_LIMITS with `overrides` applied; throws when a value is out of its range. */
export function resolveHttpLimits(overrides: Partial<HttpLimits> = {}): HttpLimits {
  const limits: HttpLimits = { ...HTTP_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0)
      throw new RangeError(`${name} must be a positive integer`);
  }
  // Node refuses a headers timeout longer than the request timeout.
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError('headersTimeoutMs must be at most requestTimeoutMs');
  }
  // Node counts the URL in the head: a larger URL limit could never answer 414.
  if (limits.urlBytesMax >= limits.headBytesMax) {
    throw new RangeError('urlBytesMax must be below headBytesMax');
  }
  return Object.freeze(limits);
}

/** The options of Node's http.createServer that enforce `limits` (fastify's `http` option). */
export function nodeServerOptions(limits: HttpLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveIdleTimeoutMs,
    connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
    maxHeaderSize: limits.headBytesMax,
    // The edge refuses an HTTP/1.1 request without `host` itself, in the contract's shape;
    // Node's own refusal is a 400 with no body.
    requireHostHeader: false,
  };
}
