// A scripted raftlog node on undici's MockAgent: tests register route handlers and see every
// request the SDK sent (method, path, query, JSON body). Nothing listens on a socket.

import { MockAgent } from 'undici';
import { Raftlog, type RaftlogOptions } from '../../src/client/index.js';

export const FAKE_URL = 'http://127.0.0.1:9090';

export interface FakeRequest {
  /** The node addressed (a FakeNode can stand for several, see serve()). */
  origin: string;
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  headers: Record<string, string>;
}

export interface FakeReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Returns a reply, or throws an Error (with a `code` like ECONNREFUSED) to fail the connection. */
export type FakeHandler = (request: FakeRequest, match: RegExpMatchArray) => FakeReply;

interface Route {
  method: string;
  pattern: RegExp;
  handler: FakeHandler;
}

export class FakeNode {
  readonly agent = new MockAgent();
  readonly requests: FakeRequest[] = [];
  private readonly routes: Route[] = [];

  constructor(readonly url: string = FAKE_URL) {
    this.agent.disableNetConnect();
    this.serve(url);
  }

  /** Answers requests to another origin too, with the same routes (request.origin tells which). */
  serve(origin: string): this {
    this.agent
      .get(origin)
      .intercept({ path: () => true, method: () => true })
      .reply((options) => {
        const request = toFakeRequest(origin, options as unknown as RawOptions);
        this.requests.push(request);
        const reply = this.dispatch(request);
        return {
          statusCode: reply.status,
          data:
            reply.body === undefined
              ? ''
              : typeof reply.body === 'string'
                ? reply.body
                : JSON.stringify(reply.body),
          responseOptions: { headers: { 'content-type': 'application/json', ...reply.headers } },
        };
      })
      .persist();
    return this;
  }

  /** Later registrations win, so a test can override a default route. */
  on(method: string, pattern: RegExp, handler: FakeHandler): this {
    this.routes.unshift({ method, pattern, handler });
    return this;
  }

  /**
   * A client of this node. `direct` by default: every request to this node, nothing learned (no
   * GET /v1/cluster in the background); routing tests pass `direct: false` and more `urls`.
   */
  client(options: Omit<RaftlogOptions, 'dispatcher'> = {}): Raftlog {
    return new Raftlog({ direct: true, url: this.url, ...options, dispatcher: this.agent });
  }

  /** Requests whose path matches. */
  sent(method: string, pattern: RegExp): FakeRequest[] {
    return this.requests.filter((r) => r.method === method && pattern.test(r.path));
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private dispatch(request: FakeRequest): FakeReply {
    for (const route of this.routes) {
      if (route.method !== request.method) continue;
      const match = request.path.match(route.pattern);
      if (match) return route.handler(request, match);
    }
    return errorReply(404, 'NOT_FOUND', `no route ${request.method} ${request.path}`);
  }
}

interface RawOptions {
  method: string;
  path: string;
  query?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
}

function toFakeRequest(origin: string, options: RawOptions): FakeRequest {
  let body: unknown;
  if (typeof options.body === 'string' && options.body !== '') body = JSON.parse(options.body);
  return {
    origin,
    method: options.method,
    path: options.path,
    query: { ...options.query },
    body,
    headers: { ...options.headers },
  };
}

export function errorReply(
  status: number,
  code: string,
  message: string,
  extra: { headers?: Record<string, string>; details?: Record<string, unknown> } = {},
): FakeReply {
  return { status, body: { error: { code, message, ...extra.details } }, headers: extra.headers };
}

export function connectionRefused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9090'), { code: 'ECONNREFUSED' });
}

export function connectionReset(): Error {
  return Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
}

/** A topic description with `partitions` partitions led by node 1. */
export function topicDescription(name: string, partitions: number, highWatermark = 0) {
  return {
    name,
    config: { persistence: 'async' as const, retentionMs: 604800000, retentionBytes: -1 },
    partitions: Array.from({ length: partitions }, (_, partition) => ({
      partition,
      leader: 1,
      term: 1,
      replicas: [1, 2, 3],
      logStartOffset: 0,
      highWatermark,
    })),
  };
}
