// One node's HTTP connection for the SDK: an undici Pool (or an injected Dispatcher, e.g. a
// MockAgent in tests), the timeouts of every request, bounded body reads, and the mapping of
// answers and failures to RaftlogError codes.

import { type Dispatcher, Pool } from 'undici';
import type { ErrorBody } from '../wire/types.js';
import { NODE_HEADER } from '../wire/types.js';
import { type NetworkFailure, RaftlogError, RaftlogNetworkError } from './errors.js';

export interface HttpOptions {
  /** Base URL of the node, e.g. http://127.0.0.1:9090 (no path). */
  baseUrl: string;
  /** Used instead of a Pool of our own (tests pass a MockAgent); never closed by us. */
  dispatcher?: Dispatcher;
  /** Connections of the Pool we create. */
  connectionsMax?: number;
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

export type QueryValue = string | number | boolean | undefined;

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, QueryValue>;
  body?: unknown;
  signal?: AbortSignal;
  /** How long the server may legitimately hold the request (long-poll, commit wait). */
  serverWaitMs?: number;
  headers?: Record<string, string>;
}

export interface StreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array> & { destroy(error?: Error): unknown };
}

export class HttpConnection {
  readonly baseUrl: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly requestTimeoutMs: number;
  private readonly responseBytesMax: number;

  constructor(options: HttpOptions) {
    this.baseUrl = normalizeBaseUrl(options.baseUrl);
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.responseBytesMax = options.responseBytesMax ?? DEFAULT_RESPONSE_BYTES_MAX;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher =
      options.dispatcher ??
      new Pool(this.baseUrl, {
        connections: options.connectionsMax ?? 16,
        connect: { timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
        headersTimeout: this.requestTimeoutMs,
        bodyTimeout: this.requestTimeoutMs,
      });
  }

  /** Sends a JSON request and returns the parsed JSON answer (undefined for an empty body). */
  async json<T>(spec: RequestSpec): Promise<T> {
    const response = await this.send(spec, this.requestTimeoutMs);
    if (response.statusCode >= 300) throw await this.errorFrom(response);
    if (response.statusCode === 204) {
      await response.body.dump();
      return undefined as T;
    }
    const text = await this.readText(response, this.responseBytesMax, spec.signal);
    if (text === '') return undefined as T; // e.g. a 200 with no body (leader transfer).
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new RaftlogError(
        'UNEXPECTED_RESPONSE',
        `${this.baseUrl} answered ${spec.path} with invalid JSON`,
        {
          statusCode: response.statusCode,
          nodeId: nodeIdOf(response.headers),
          cause: error,
        },
      );
    }
  }

  /**
   * Opens a long-lived response (NDJSON stream). There is no body timeout: a stream with nothing
   * to say is idle, not dead. TCP keep-alive (on by default in undici) finds dead peers, and the
   * caller's signal ends the stream.
   */
  async stream(spec: RequestSpec): Promise<StreamResponse> {
    const response = await this.send(spec, 0);
    if (response.statusCode >= 300) throw await this.errorFrom(response);
    return { statusCode: response.statusCode, headers: response.headers, body: response.body };
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private async send(spec: RequestSpec, bodyTimeoutMs: number): Promise<Dispatcher.ResponseData> {
    spec.signal?.throwIfAborted();
    const headers: Record<string, string> = { accept: 'application/json', ...spec.headers };
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers['content-type'] = 'application/json';
    }
    try {
      return await this.dispatcher.request({
        origin: this.baseUrl,
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
      throw this.networkError(error);
    }
  }

  /** Reads a whole body as UTF-8, refusing more than bytesMax (the rest is discarded). */
  private async readText(
    response: Dispatcher.ResponseData,
    bytesMax: number,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const chunks: Buffer[] = [];
    let bytes = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > bytesMax) {
          response.body.destroy();
          throw new RaftlogError(
            'UNEXPECTED_RESPONSE',
            `answer from ${this.baseUrl} exceeds ${bytesMax} bytes`,
            {
              statusCode: response.statusCode,
            },
          );
        }
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof RaftlogError) throw error;
      signal?.throwIfAborted();
      throw this.networkError(error);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** The RaftlogError of a non-2xx answer: the contract's body when there is one. */
  private async errorFrom(response: Dispatcher.ResponseData): Promise<RaftlogError> {
    const statusCode = response.statusCode;
    const nodeId = nodeIdOf(response.headers);
    const retryAfterMs = parseRetryAfterMs(response.headers['retry-after']);
    let text = '';
    try {
      text = await this.readText(response, ERROR_BODY_BYTES_MAX, undefined);
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
    const message = `${this.baseUrl} answered HTTP ${statusCode}${snippet ? `: ${snippet}` : ''}`;
    return new RaftlogError(code, message, { statusCode, retryAfterMs, nodeId });
  }

  private networkError(error: unknown): RaftlogError {
    if (error instanceof RaftlogError) return error;
    return new RaftlogNetworkError(this.baseUrl, networkFailureOf(error), error);
  }
}

function definedQuery(query: Record<string, QueryValue> | undefined): Record<string, string> | undefined {
  if (!query) return undefined;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) out[name] = String(value);
  }
  return Object.keys(out).length > 0 ? out : undefined;
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

function nodeIdOf(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headers[NODE_HEADER];
  const id = Number(Array.isArray(value) ? value[0] : value);
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
