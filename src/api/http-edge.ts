// The HTTP edge of a node: what is refused before a route runs, and how. Node's parser errors and
// timeouts, URLs and declared bodies over their limits, `expect: 100-continue`, stalled bodies,
// wrong methods and media types all answer in the contract's shape {"error": {"code", "message"}}.

import assert from 'node:assert/strict';
import {
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Socket } from 'node:net';
import { type Readable, Transform } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { BrokerError } from '../broker/errors.js';
import { NODE_HEADER } from '../wire/types.js';
import type { HttpLimits } from './http-limits.js';

/** The app buildApp makes (fastify's instance type is invariant in its logger). */
type App = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>;

export interface HttpEdgeOptions {
  nodeId: number;
  limits: HttpLimits;
}

/** Methods whose body fastify reads (its `bodywith` set, less QUERY which no route takes). */
const BODY_METHODS = new Set(['DELETE', 'OPTIONS', 'PATCH', 'PUT', 'POST']);

/**
 * Installs the edge on `app` before its routes are registered: a front for fastify's request
 * listener, the answer to `expect: 100-continue`, the body watchdog and the media type rule.
 */
export function installHttpEdge(app: App, options: HttpEdgeOptions): void {
  const { limits } = options;
  const nodeId = String(options.nodeId);
  const server = app.server;
  // Fastify owns the one 'request' listener (its router). Requests pass the edge before it, so a
  // URL over the limit is a 414 whatever the router would make of it.
  const listeners = server.listeners('request') as RequestListener[];
  assert.equal(listeners.length, 1, 'fastify owns the only request listener');
  const route = listeners[0]!;
  server.removeListener('request', route);
  const front = (request: IncomingMessage, response: ServerResponse): void => {
    const refusal = refusalAtEdge(request, limits);
    if (refusal) answerAtEdge(response, nodeId, refusal);
    else route(request, response);
  };
  server.on('request', front);
  // An expectation other than 100-continue is ignored, as RFC 9110 allows, rather than answered
  // with Node's bare 417.
  server.on('checkExpectation', front);
  // With a listener here Node writes no `100 Continue` on its own: an oversized body is refused
  // before the client is invited to send it.
  server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    const refusal = refusalAtEdge(request, limits);
    if (refusal) return answerAtEdge(response, nodeId, refusal);
    response.writeContinue();
    route(request, response);
  });
  // Bodies are JSON: without this, fastify's default text/plain parser would take a text body
  // and validation would answer 400 where the truth is 415.
  app.removeContentTypeParser('text/plain');
  app.addHook('preParsing', (request, _reply, payload, done) => {
    const mayStall =
      BODY_METHODS.has(request.method) && !request.is404 && !request.raw.complete && hasBody(request.raw);
    done(null, mayStall ? watchBodyProgress(payload, limits.bodyIdleTimeoutMs) : payload);
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    // An error answered before the body has arrived: the rest of it is not worth reading.
    if (reply.statusCode >= 400 && !request.raw.complete && hasBody(request.raw)) {
      reply.header('connection', 'close');
    }
    done(null, payload);
  });
}

/** Fastify's `clientErrorHandler`: Node's parser errors and timeouts, answered on the raw socket. */
export function clientErrorHandler(options: HttpEdgeOptions & { logger: Logger }) {
  const nodeId = String(options.nodeId);
  return (error: Error & { code?: string }, socket: Socket): void => {
    // Already answered (a parser in error reports again on every chunk): let that answer flush.
    if (error.code === 'ECONNRESET' || socket.destroyed || socket.writableEnded) return;
    options.logger.debug({ err: error }, 'client error');
    const coded = codeClientError(error, options.limits);
    // Like Node's own handler: write only where no answer to this request has begun.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (coded && socket.writable && !socket.writableEnded && !inFlight?.headersSent) {
      socket.write(rawErrorResponse(nodeId, coded));
      socket.destroySoon();
    } else {
      socket.destroy();
    }
  };
}

/** The contract's error for an error Node's HTTP server reports; null for a socket error. */
export function codeClientError(error: Error & { code?: string }, limits: HttpLimits): BrokerError | null {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new BrokerError(
        'REQUEST_TIMEOUT',
        `the request did not arrive in time: headers within headersTimeoutMs (${limits.headersTimeoutMs}), ` +
          `the whole request within requestTimeoutMs (${limits.requestTimeoutMs})`,
      );
    // Node counts the request line with the headers and does not say which part overflowed.
    case 'HPE_HEADER_OVERFLOW':
      return new BrokerError(
        'HEADERS_TOO_LARGE',
        `the request line and headers are over headBytesMax (${limits.headBytesMax} bytes)`,
      );
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new BrokerError('REQUEST_TOO_LARGE', 'the chunk extensions of the body are too large');
    default:
      if (error.code?.startsWith('HPE_')) {
        return new BrokerError('INVALID_REQUEST', `malformed HTTP request: ${error.message}`);
      }
      return null;
  }
}

/** The methods `url` takes, when it names a route at all (for 405 and its `allow` header). */
export function allowedMethods(app: App, url: string): string[] {
  return app.supportedMethods.filter((method) => app.findRoute({ method, url }) !== null);
}

/**
 * What the edge refuses before the router sees the request: an HTTP/1.1 request without `host`
 * (RFC 9112 requires the 400), a long URL, a body declared too large.
 */
function refusalAtEdge(request: IncomingMessage, limits: HttpLimits): BrokerError | null {
  if (request.httpVersion === '1.1' && request.headers.host === undefined) {
    return new BrokerError('INVALID_REQUEST', 'an HTTP/1.1 request must have a host header');
  }
  // The URL is latin1 text of the raw bytes: its length is its size in bytes.
  const urlBytes = request.url?.length ?? 0;
  if (urlBytes > limits.urlBytesMax) {
    return new BrokerError(
      'URI_TOO_LONG',
      `the URL is ${urlBytes} bytes, over urlBytesMax (${limits.urlBytesMax})`,
    );
  }
  const declaredBytes = Number(request.headers['content-length'] ?? 0);
  if (declaredBytes > limits.requestBytesMax) {
    return new BrokerError(
      'REQUEST_TOO_LARGE',
      `the request declares a ${declaredBytes}-byte body, over maxRequestBytes (${limits.requestBytesMax})`,
    );
  }
  return null;
}

/** Answers on the response object, before any route; the body is left unread and the connection closed. */
function answerAtEdge(response: ServerResponse, nodeId: string, error: BrokerError): void {
  const body = JSON.stringify(error.toBody());
  response.writeHead(error.statusCode, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    [NODE_HEADER]: nodeId,
    connection: 'close',
  });
  response.end(body);
}

function rawErrorResponse(nodeId: string, error: BrokerError): string {
  const body = JSON.stringify(error.toBody());
  return (
    `HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode]}\r\n` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `${NODE_HEADER}: ${nodeId}\r\nconnection: close\r\n\r\n${body}`
  );
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Passes a request body through, and fails it with 408 REQUEST_TIMEOUT when no byte arrives for
 * `idleTimeoutMs`. The failure reaches the body parser, so the answer takes fastify's error
 * path; the parser's error closes the connection.
 */
function watchBodyProgress(body: Readable, idleTimeoutMs: number): Readable {
  const timer = setTimeout(() => {
    body.unpipe(watched);
    watched.destroy(
      new BrokerError(
        'REQUEST_TIMEOUT',
        `no byte of the body arrived for bodyIdleTimeoutMs (${idleTimeoutMs})`,
      ),
    );
  }, idleTimeoutMs).unref();
  const watched = new Transform({
    transform(chunk, _encoding, callback) {
      timer.refresh();
      callback(null, chunk);
    },
    flush(callback) {
      clearTimeout(timer);
      callback();
    },
  });
  watched.once('close', () => clearTimeout(timer));
  // The parser listens for errors while it reads; once it has answered (a 415 before reading,
  // say), nobody does, and a late failure must not become an uncaught exception.
  watched.on('error', () => {});
  // A client that goes away mid-body fails the body, as it does unwatched.
  body.once('error', (error) => watched.destroy(error));
  body.pipe(watched);
  return watched;
}
