// The SDK's HTTP layer: one undici Agent (a keep-alive pool per node) or an injected Dispatcher
// (a MockAgent in tests), the timeouts of every request, bounded body reads, and the mapping of
// answers and failures to RaftlogError codes. It knows nothing of routing: callers name the node.

import { Agent, type Dispatcher } from 'undici';
import type { ErrorBody } from '../wire/types.js';
import { NODE_HEADER } from '../wire/types.js';
import { type NetworkFailure, RaftlogError, RaftlogNetworkError } from './errors.js';

export interface HttpOptions {
  /** Used instead of an Agent of our own (tests pass a MockAgent); never closed by us. */
  dispatcher?: Dispatcher;
  /** Keep-alive connections per node. */
  connectionsPerNode?: number;
  /** Time to wait for an answer's headers, on top of any server-side wait (waitMs, timeoutMs). */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Largest response body read into memory. */
  responseBytesMax?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_RESPONSE_BYTES_MAX = 64 * 1024 * 1024;
const ERROR_BODY_BYTES_MAX = 64 * 1024;
// Shared by every request without headers of its own (undici only reads them): one object less per request.
const ACCEPT_JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ accept: 'application/json' });
const JSON_BODY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  accept: 'application/json',
  'content-type': 'application/json',
});
/** Set on an answer another node produced (the receiving node forwarded the request). */
export const SERVED_BY_HEADER = 'x-raftlog-served-by';

export type QueryValue = string | number | boolean | undefined;

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, QueryValue>;
  /** A JSON value, or JSON text already serialized. */
  body?: unknown;
  signal?: AbortSignal;
  /** How long the server may legitimately hold the request (long-poll, commit wait). */
  serverWaitMs?: number;
  headers?: Record<string, string>;
  /** Reads a 2xx body other than as JSON (the binary fetch answer): bytes and content-type in. */
  parse?: (body: Buffer, contentType: string) => unknown;
}

/** A parsed JSON answer and who produced it. */
export interface JsonAnswer<T> {
  body: T;
  /** `x-raftlog-node`: the node that received the request. */
  nodeId: number | undefined;
  /** `x-raftlog-served-by`: the node(s) that did the work when the receiver forwarded it. */
  servedBy: string | undefined;
}

export interface StreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array> & { destroy(error?: Error): unknown };
}

/** Pre-serialized JSON text, sent as is (the producer builds its bodies itself). */
export class JsonText {
  constructor(readonly text: string) {}
}

export class HttpTransport {
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  readonly requestTimeoutMs: number;
  private readonly responseBytesMax: number;

  constructor(options: HttpOptions = {}) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.responseBytesMax = options.responseBytesMax ?? DEFAULT_RESPONSE_BYTES_MAX;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher =
      options.dispatcher ??
      new Agent({
        connections: options.connectionsPerNode ?? 16,
        connect: { timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
        headersTimeout: this.requestTimeoutMs,
        bodyTimeout: this.requestTimeoutMs,
      });
  }

  /** Sends a JSON request to `origin`; the parsed answer (undefined for an empty body) and its node. */
  async request<T>(origin: string, spec: RequestSpec): Promise<JsonAnswer<T>> {
    const response = await this.send(origin, spec, this.requestTimeoutMs);
    if (response.statusCode >= 300) throw await this.errorFrom(origin, response);
    const nodeId = nodeIdOf(response.headers);
    const servedBy = headerText(response.headers[SERVED_BY_HEADER]);
    if (response.statusCode === 204) {
      await response.body.dump();
      return { body: undefined as T, nodeId, servedBy };
    }
    const parse = spec.parse;
    if (parse) {
      const bytes = await this.readBytes(origin, response, this.responseBytesMax, spec.signal);
      const contentType = headerText(response.headers['content-type']) ?? '';
      try {
        return { body: parse(bytes, contentType) as T, nodeId, servedBy };
      } catch (error) {
        throw new RaftlogError(
          'UNEXPECTED_RESPONSE',
          `${origin} answered ${spec.path} with a body it cannot read`,
          {
            statusCode: response.statusCode,
            nodeId,
            cause: error,
          },
        );
      }
    }
    const text = await this.readText(origin, response, this.responseBytesMax, spec.signal);
    if (text === '') return { body: undefined as T, nodeId, servedBy }; // e.g. a 200 with no body.
    try {
      return { body: JSON.parse(text) as T, nodeId, servedBy };
    } catch (error) {
      throw new RaftlogError('UNEXPECTED_RESPONSE', `${origin} answered ${spec.path} with invalid JSON`, {
        statusCode: response.statusCode,
        nodeId,
        cause: error,
      });
    }
  }

  /**
   * Opens a long-lived response (NDJSON stream). There is no body timeout: a stream with nothing
   * to say is idle, not dead. TCP keep-alive (on by default in undici) finds dead peers, and the
   * caller's signal ends the stream.
   */
  async stream(origin: string, spec: RequestSpec): Promise<StreamResponse> {
    const response = await this.send(origin, spec, 0);
    if (response.statusCode >= 300) throw await this.errorFrom(origin, response);
    return { statusCode: response.statusCode, headers: response.headers, body: response.body };
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private async send(origin: string, spec: RequestSpec, bodyTimeoutMs: number) {
    spec.signal?.throwIfAborted();
    let headers: Record<string, string>;
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = spec.body instanceof JsonText ? spec.body.text : JSON.stringify(spec.body);
      headers = spec.headers ? { ...JSON_BODY_HEADERS, ...spec.headers } : JSON_BODY_HEADERS;
    } else {
      headers = spec.headers ? { ...ACCEPT_JSON_HEADERS, ...spec.headers } : ACCEPT_JSON_HEADERS;
    }
    try {
      return await this.dispatcher.request({
        origin,
        method: spec.method,
        path: spec.path,
        query: definedQuery(spec.query),
        headers,
        body,
        signal: spec.signal,
        headersTimeout: (spec.serverWaitMs ?? 0) + this.requestTimeoutMs,
        bodyTimeout: bodyTimeoutMs,
      });
    } catch (error) {
      spec.signal?.throwIfAborted();
      throw networkError(origin, error);
    }
  }

  /** Reads a whole body as UTF-8, refusing more than bytesMax (the rest is discarded). */
  private async readText(
    origin: string,
    response: Dispatcher.ResponseData,
    bytesMax: number,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    return (await this.readBody(origin, response, bytesMax, signal, 'text')).toString();
  }

  /** Reads a whole body as bytes, refusing more than bytesMax (the rest is discarded). */
  private async readBytes(
    origin: string,
    response: Dispatcher.ResponseData,
    bytesMax: number,
    signal: AbortSignal | undefined,
  ): Promise<Buffer> {
    const body = await this.readBody(origin, response, bytesMax, signal, 'bytes');
    return typeof body === 'string' ? Buffer.from(body) : body;
  }

  private async readBody(
    origin: string,
    response: Dispatcher.ResponseData,
    bytesMax: number,
    signal: AbortSignal | undefined,
    as: 'text' | 'bytes',
  ): Promise<string | Buffer> {
    // A declared length within the bound: undici's own reader, without an async iterator.
    const declared = Number(response.headers['content-length']);
    if (declared <= bytesMax) {
      try {
        return as === 'text' ? await response.body.text() : Buffer.from(await response.body.arrayBuffer());
      } catch (error) {
        signal?.throwIfAborted();
        throw networkError(origin, error);
      }
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > bytesMax) {
          response.body.destroy();
          throw new RaftlogError('UNEXPECTED_RESPONSE', `answer from ${origin} exceeds ${bytesMax} bytes`, {
            statusCode: response.statusCode,
          });
        }
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof RaftlogError) throw error;
      signal?.throwIfAborted();
      throw networkError(origin, error);
    }
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes);
    return as === 'text' ? all.toString('utf8') : all;
  }

  /** The RaftlogError of a non-2xx answer: the contract's body when there is one. */
  private async errorFrom(origin: string, response: Dispatcher.ResponseData): Promise<RaftlogError> {
    const statusCode = response.statusCode;
    const nodeId = nodeIdOf(response.headers);
    const retryAfterMs = parseRetryAfterMs(response.headers['retry-after']);
    let text = '';
    try {
      text = await this.readText(origin, response, ERROR_BODY_BYTES_MAX, undefined);
    } catch {
      // An unreadable error body still has a status; report that.
    }
    const parsed = parseErrorBody(text);
    if (parsed) {
      const { code, message, ...details } = parsed.error;
      return new RaftlogError(code, message, { statusCode, details, retryAfterMs, nodeId });
    }
    // Not the contract's shape: an unknown route (a node older than the SDK) or a proxy's page.
    const code = statusCode === 404 ? 'NOT_FOUND' : 'UNEXPECTED_RESPONSE';
    const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
    const message = `${origin} answered HTTP ${statusCode}${snippet ? `: ${snippet}` : ''}`;
    return new RaftlogError(code, message, { statusCode, retryAfterMs, nodeId });
  }
}

function networkError(origin: string, error: unknown): RaftlogError {
  if (error instanceof RaftlogError) return error;
  return new RaftlogNetworkError(origin, networkFailureOf(error), error);
}

function definedQuery(query: Record<string, QueryValue> | undefined): Record<string, string> | undefined {
  if (!query) return undefined;
  let out: Record<string, string> | undefined;
  for (const name in query) {
    const value = query[name];
    if (value === undefined) continue;
    out ??= {};
    out[name] = String(value);
  }
  return out;
}

/** Validates a node URL and strips a trailing slash; a path is refused (routes start at /v1). */
export function normalizeBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`invalid server URL '${url}': expected e.g. http://127.0.0.1:9090`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`invalid server URL '${url}': only http:// and https:// are supported`);
  }
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search || parsed.hash) {
    throw new TypeError(`invalid server URL '${url}': give only scheme, host and port`);
  }
  return parsed.origin;
}

function parseErrorBody(text: string): ErrorBody | undefined {
  try {
    const body = JSON.parse(text) as Partial<ErrorBody> | null;
    const error = body?.error;
    if (error && typeof error.code === 'string' && typeof error.message === 'string')
      return body as ErrorBody;
  } catch {
    // Not JSON.
  }
  return undefined;
}

/** `retry-after` is delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfterMs(
  header: string | string[] | undefined,
  nowMs = Date.now(),
): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000));
  const dateMs = Date.parse(value);
  return Number.isNaN(dateMs) ? undefined : Math.max(0, dateMs - nowMs);
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function nodeIdOf(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headerText(headers[NODE_HEADER]);
  if (value === undefined) return undefined;
  const id = Number(value);
  return Number.isInteger(id) ? id : undefined;
}

function networkFailureOf(error: unknown): NetworkFailure {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'connect timeout';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'response timeout';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'connection reset';
    default:
      return 'network error';
  }
}
